from django.urls import path

from glabella.inventory import views

app_name = "inventory"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("receive/", views.receive, name="receive"),
    path("lot/<int:pk>/", views.lot_detail, name="lot"),
    path("lot/<int:pk>/transfer/", views.lot_transfer, name="lot_transfer"),
    path("lot/<int:pk>/destroy/", views.lot_destroy, name="lot_destroy"),
    path("lot/<int:pk>/adjust/", views.lot_adjust, name="lot_adjust"),
    path("vial/<int:pk>/", views.vial_detail, name="vial"),
    path("vial/<int:pk>/reconstitute/", views.vial_reconstitute, name="vial_reconstitute"),
    path("vial/<int:pk>/waste/", views.vial_waste, name="vial_waste"),
    path("vial/<int:pk>/destroy/", views.vial_destroy, name="vial_destroy"),
    path("reconciliation/", views.reconciliation_page, name="reconciliation"),
    path("reconciliation.csv", views.reconciliation_csv, name="reconciliation_csv"),
    path("prices.csv", views.prices_csv, name="prices_csv"),
    path("recall/", views.recall, name="recall"),
    path("recall.csv", views.recall_csv, name="recall_csv"),
    path("settings/", views.stock_settings, name="settings"),
]
