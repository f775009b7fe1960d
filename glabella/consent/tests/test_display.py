from glabella.consent.templatetags.consent_tags import consent_text


def test_consent_text_is_escaped_and_structured():
    html = consent_text(
        "[Note to the clinic.]\n\n"
        "What it is\nA medicine that relaxes muscles, injected with a very fine needle, "
        "usually in a few minutes.\n\n"
        "I told the clinic:\n• about <my> medicines;\n- about allergies.\n\n"
        "Important warning: spread\nVery rarely the effect spreads beyond the place it was "
        "injected, hours to weeks later.\n\n"
        "Patient: Ada\nDate: 01/02/2026"
    )
    assert '<p class="review-note">[Note to the clinic.]</p>' in html
    assert "<h3>What it is</h3>" in html
    assert "<ul><li>about &lt;my&gt; medicines;</li><li>about allergies.</li></ul>" in html
    assert '<div class="boxed-warning"><h3>Important warning: spread</h3>' in html
    assert "<p>Patient: Ada<br>Date: 01/02/2026</p>" in html
    assert "<my>" not in html
