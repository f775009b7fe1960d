"""recall pages (see urls.py): the recall worklist, its actions and the migraine cycle planner."""

from django.urls import URLPattern, path

from glabella.scheduling import recall_views as views

urlpatterns: list[URLPattern] = [
    path("recalls/", views.worklist, name="recalls"),
    path("recalls/<int:pk>/state/", views.recall_state, name="recall_state"),
    path("patients/<int:pk>/cycles/", views.cycle_planner, name="cycles"),
    path("patients/<int:pk>/cycles/book/", views.cycle_book, name="cycles_book"),
]
