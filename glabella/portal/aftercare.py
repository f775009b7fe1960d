"""Default aftercare instructions, per consent category, in plain words for the patient.

What a patient reads on their own pages after a treatment. The wording follows the usual
advice given with botulinum toxin treatments and, for the urgent part, the boxed "distant
spread of toxin effect" warning in the US labels of every product (difficulty swallowing,
breathing or speaking, double vision, drooping eyelids, general muscle weakness, hours to
weeks after the injection). It is general advice, not a clinician's instruction for one
patient: a clinic that wants other wording changes it here (and says so in its review of
the software).
"""

from __future__ import annotations

from dataclasses import dataclass

from glabella.consent.categories import (
    CHRONIC_MIGRAINE,
    COSMETIC,
    HYPERHIDROSIS,
    OTHER_MEDICAL,
    category_for_indication,
)


@dataclass(frozen=True)
class Aftercare:
    category: str
    title: str
    steps: tuple[str, ...]
    when_it_works: str
    urgent: tuple[str, ...]
    source: str


URGENT: tuple[str, ...] = (
    "trouble swallowing, or food or drink going down the wrong way",
    "trouble breathing or a feeling of tightness in the chest or throat",
    "trouble speaking, or a voice that has changed",
    "double or blurred vision",
    "a drooping eyelid or eyebrow",
    "weakness of muscles away from where you were injected",
    "a rash, swelling of the face, lips or tongue, or feeling faint (an allergic reaction)",
)
URGENT_SOURCE = (
    "Boxed warning “Distant spread of toxin effect” in the US prescribing information of "
    "every botulinum toxin product (Botox, Botox Cosmetic, Dysport, Xeomin, Jeuveau, "
    "Daxxify, Letybo, Myobloc)."
)

_ADVICE: dict[str, Aftercare] = {
    COSMETIC: Aftercare(
        category=COSMETIC,
        title="After your treatment for lines and wrinkles",
        steps=(
            "Stay upright for 4 hours: do not lie down or bend over for long.",
            "Do not rub, press or massage the treated areas today.",
            "No hard exercise, sauna, steam room or hot bath for the rest of the day.",
            "Do not wear a tight hat, headband or goggles over the treated areas today.",
            "You may wash your face gently and wear make-up from the next day.",
            "A little redness, a small bump or a bruise where the needle went in is normal "
            "and goes within a few days. A mild headache may happen on the first day.",
        ),
        when_it_works=(
            "The effect starts after 3 to 14 days and is at its best after about two weeks. "
            "It usually lasts 3 to 4 months. Do not have more injections before your review."
        ),
        urgent=URGENT,
        source=URGENT_SOURCE,
    ),
    CHRONIC_MIGRAINE: Aftercare(
        category=CHRONIC_MIGRAINE,
        title="After your treatment for chronic migraine",
        steps=(
            "Do not rub or massage the injected areas today.",
            "Your neck and forehead may feel stiff or sore for a few days: this is common.",
            "Keep filling in your headache diary every day: it shows whether the treatment "
            "works for you.",
            "Keep taking your other medicines as agreed with your doctor.",
        ),
        when_it_works=(
            "It can take a few weeks to notice fewer headache days, and sometimes two or "
            "three treatments, 12 weeks apart. Your clinic will look at your diary with you."
        ),
        urgent=URGENT,
        source=URGENT_SOURCE,
    ),
    HYPERHIDROSIS: Aftercare(
        category=HYPERHIDROSIS,
        title="After your treatment for excessive sweating",
        steps=(
            "Do not use deodorant or antiperspirant on the treated skin for 24 hours.",
            "No hard exercise, sauna or hot bath for the rest of the day.",
            "Do not rub or massage the treated skin today.",
            "Small bruises or tender spots are normal and go within a few days.",
        ),
        when_it_works=(
            "Sweating usually falls within 2 to 7 days. The effect often lasts 4 to 6 months "
            "or longer."
        ),
        urgent=URGENT,
        source=URGENT_SOURCE,
    ),
    OTHER_MEDICAL: Aftercare(
        category=OTHER_MEDICAL,
        title="After your treatment",
        steps=(
            "Do not rub or massage the injected areas today.",
            "Follow any exercises or stretches your care team gave you.",
            "Some soreness where the needle went in is normal for a few days.",
        ),
        when_it_works=(
            "The effect usually starts within 1 to 2 weeks and wears off over about 3 months."
        ),
        urgent=URGENT,
        source=URGENT_SOURCE,
    ),
}


def for_category(category: str) -> Aftercare:
    return _ADVICE.get(category, _ADVICE[OTHER_MEDICAL])


def for_indication(indication_id: str) -> Aftercare:
    """The aftercare for a treatment of INDICATION_ID (an unknown id gets the general text)."""
    try:
        category = category_for_indication(indication_id)
    except ValueError:
        category = OTHER_MEDICAL
    return for_category(category)
