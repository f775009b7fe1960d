# ruff: noqa: E501  (prose: the consent wording is kept one paragraph per line)
"""The default consent wording a new organization starts with (version 1 of each category).

Written plainly, as a clinic would give it to a patient. It is a starting point, not
legal advice: the first line tells the clinic to review it, and stays on every form
signed until the clinic writes its own version.
"""

from __future__ import annotations

from dataclasses import dataclass

from glabella.consent.categories import (
    CHRONIC_MIGRAINE,
    COSMETIC,
    HYPERHIDROSIS,
    OTHER_MEDICAL,
    PHOTO_MARKETING,
    PHOTOGRAPHY,
)

REVIEW_MARKER = (
    "[Default wording supplied with Glabella. The clinic must review and adapt this form "
    "before using it, then remove this line.]"
)

_HEADER = """Patient: {patient_name}, born {date_of_birth}
Clinic: {clinic_name}
Date: {date}"""

_SPREAD_WARNING = """Important warning: spread of the toxin effect
Very rarely, the effect of botulinum toxin can spread beyond the place it was injected, hours to weeks afterwards. This can cause muscle weakness anywhere in the body, drooping eyelids, double or blurred vision, a hoarse voice, slurred speech, loss of bladder control, and trouble swallowing or breathing. Trouble swallowing or breathing can be life-threatening. If any of these happen, get medical help straight away (call the emergency number) and tell the clinic."""

_TOLD_THE_CLINIC = """Before the treatment I have told the clinic:
• about my medical conditions, including any muscle or nerve disease (such as myasthenia gravis or Lambert-Eaton syndrome) and any problems with swallowing or breathing;
• about every medicine I take, including blood thinners and antibiotics given by injection, and about any botulinum toxin injections I have had before, and when;
• whether I am pregnant, might be pregnant, or am breastfeeding;
• about any allergy, including an allergy to cow's milk protein or to a toxin product."""

_MY_CONSENT = """My consent
I have read this form, or it has been read to me. I have had the chance to ask questions and I am satisfied with the answers. I understand that the result cannot be guaranteed, that I may change my mind at any time before the injections, and that I can withdraw this consent at any time by telling the clinic. I agree to the treatment described above."""


@dataclass(frozen=True)
class DefaultTemplate:
    title: str
    body: str
    valid_months: int = 12


COSMETIC_BODY = f"""{REVIEW_MARKER}

{_HEADER}

What the treatment is
Botulinum toxin is a medicine that relaxes the muscles it is injected into. A very small amount is injected with a fine needle into the muscles that cause frown lines between the eyebrows, crow's feet, forehead lines or bands on the neck. The injections take a few minutes and usually need no anaesthetic.

What to expect
The effect starts after 2 to 5 days and is at its best after about 2 weeks. It usually lasts 3 to 4 months and then wears off gradually as the muscles recover. To keep the effect, the treatment has to be repeated, no more often than every 3 months. Results differ from person to person.

Common side effects
These are usually mild and pass within days: redness, swelling, tenderness or bruising where the needle went in; headache; a heavy feeling in the forehead. Less often, an eyebrow or an upper eyelid can droop for a few weeks. Rarely: an uneven look, dry or watery eyes, double vision, or an allergic reaction (rash, itching, swelling, wheezing).

{_SPREAD_WARNING}

{_TOLD_THE_CLINIC}

After the treatment
Do not rub or massage the treated area for the rest of the day. For about 4 hours, stay upright and avoid hard exercise, saunas and alcohol. Contact the clinic if anything worries you.

Photographs (optional)
The clinic may take photographs of the treated area before and after treatment. They are part of my medical record. They will not be used for anything else (teaching, publication, advertising) unless I agree separately in writing. I may refuse photographs and still be treated.

{_MY_CONSENT}"""


MIGRAINE_BODY = f"""{REVIEW_MARKER}

{_HEADER}

What the treatment is
Botulinum toxin type A (onabotulinumtoxinA, Botox) is licensed to help prevent headaches in adults with chronic migraine: headache on 15 or more days a month, on at least 8 of which it is migraine. It does not stop a headache that has already started.
The treatment follows a standard pattern called PREEMPT: 31 small injections, 5 units each (155 units in total), into seven areas of the head, neck and shoulders: the forehead, between the eyebrows, the temples, the back of the head, the upper neck and the top of the shoulders. The doctor may add a few more injections where the pain is worst. The treatment is repeated every 12 weeks.

What to expect
It may take two or three treatments (up to 6 months) to know whether it helps. Please keep a headache diary: it shows whether the treatment works. If it has not helped after two or three treatments, it is usually stopped. Keep taking your other headache medicines unless your doctor tells you otherwise.

Common side effects
These usually settle within a few weeks: neck pain or stiffness; weakness of the neck muscles, making it harder to hold the head up; a worse headache or migraine for a few days after the injections; a drooping eyelid (ptosis) or a change in the shape of the eyebrows; muscle pain or stiffness in the shoulders; pain or bruising where the needle went in.

{_SPREAD_WARNING}

{_TOLD_THE_CLINIC}

{_MY_CONSENT}"""


HYPERHIDROSIS_BODY = f"""{REVIEW_MARKER}

{_HEADER}

What the treatment is
Botulinum toxin blocks the nerve signals that switch on the sweat glands. For excessive underarm sweating, many tiny injections are given just under the skin (intradermal injections), spread evenly over the sweating area of each armpit, usually 10 to 15 per side. The area may first be marked with a starch-iodine test. A numbing cream or ice can make the injections more comfortable.

What to expect
Sweating is reduced within a few days, with the full effect after about 2 weeks. The effect usually lasts 4 to 12 months; the treatment can then be repeated. It reduces sweating in the treated area only.

Common side effects
Soreness, bruising or itching where the needle went in; more sweating in other parts of the body (compensatory sweating); a headache; hot flushes. Rarely, temporary weakness in the arm or hand muscles near the injections.

{_SPREAD_WARNING}

{_TOLD_THE_CLINIC}

After the treatment
Do not use antiperspirant on the treated area for 24 hours, and avoid hard exercise and saunas for the rest of the day.

{_MY_CONSENT}"""


OTHER_MEDICAL_BODY = f"""{REVIEW_MARKER}

{_HEADER}

What the treatment is
Botulinum toxin is a medicine that relaxes overactive muscles. Your doctor has recommended it for a medical condition (for example muscle spasms of the eyelids, neck or limbs, or an overactive bladder). The condition, the muscles to be injected, the product and the dose are written in your treatment record, and your doctor has explained them to you. Some injections are guided by ultrasound or by a small needle that measures muscle activity (EMG).

What to expect
The effect usually starts within a few days to 2 weeks and lasts about 3 months, sometimes longer. The treatment is then repeated if it has helped. It eases the symptoms; it does not cure the condition.

Common side effects
These depend on where the injections are given, and usually pass within a few weeks: pain, bruising or soreness where the needle went in; weakness of the injected muscle or the muscles near it; tiredness or flu-like symptoms. Injections in the neck can make swallowing difficult or the neck weak. Injections around the eyes can cause a drooping eyelid, dry or watery eyes, or double vision. Injections in the bladder can cause a urine infection or difficulty emptying the bladder, which may need a catheter for a while.

{_SPREAD_WARNING}

{_TOLD_THE_CLINIC}

{_MY_CONSENT}"""


PHOTOGRAPHY_BODY = f"""{REVIEW_MARKER}

{_HEADER}

What is taken
The clinic takes photographs of the areas being treated (for example the face, the neck or the underarms), before the treatment and at follow-up visits, always from the same angles and with the same expressions, so that the results can be compared. The photographs are taken with the clinic's own tablet or camera, never with a personal phone.

Why
The photographs are part of my medical record. They help the clinician plan each treatment, judge how well it worked and how long it lasted, and notice any side effect such as a drooping eyelid or an uneven result.

Who sees them
Only the clinic's staff who treat me or look after my record, and the people who check the clinic's records (auditors), can see them. They are not shown to anyone else, and not used for teaching, publication, a website, social media or advertising, unless I agree to that separately on the marketing form.

How they are stored
The photographs are stored privately, with my record, on the clinic's own system or its secure storage provider. Location data and camera details are removed from each photograph when it is saved. Every time a photograph is opened, the system records who opened it and when.

How long they are kept
As long as the clinic keeps my medical record, which the law requires for a number of years after my last visit. A photograph taken by mistake is marked as an error, hidden from everyday use, and kept with the record.

Withdrawing
I may refuse photographs and still be treated. I can withdraw this consent at any time by telling the clinic: no new photographs will then be taken. Photographs already taken stay in my medical record, because a medical record is never edited or deleted.

My consent
I have read this form, or it has been read to me, and I have had the chance to ask questions. I agree to clinical photographs being taken and kept in my medical record as described above."""


PHOTO_MARKETING_BODY = f"""{REVIEW_MARKER}

{_HEADER}

What I am asked
The clinic would like to use some of my clinical photographs to show its work: on its website, on its social media pages, in leaflets and in before-and-after examples shown to other patients. This is separate from the photographs kept in my medical record, and saying no does not change my treatment in any way.

What is used
Only photographs I have been shown and agreed to. The clinic chooses them from my record and marks each one for marketing use. My name, date of birth and other details are never shown with them. My face may be recognisable unless the clinic crops the photograph; I can ask for that.

Who sees them
Anyone who visits the clinic's website or social media pages, or reads its leaflets. Once a photograph is published on the internet, other people can copy it, and the clinic cannot control those copies.

How long
The clinic may use the marked photographs for as long as this consent is valid. When it ends, the clinic stops any new use of them.

Withdrawing
I can withdraw this consent at any time by telling the clinic. The clinic will then stop any new use of my photographs at once, and remove them from its own website and social media pages within 30 days. It cannot recall leaflets already printed or copies made by other people.

My consent
I have read this form, or it has been read to me, and I have had the chance to ask questions. I agree to the clinic using my photographs for marketing as described above. I know I do not have to agree to this to be treated."""


DEFAULTS: dict[str, DefaultTemplate] = {
    COSMETIC: DefaultTemplate(
        "Consent to botulinum toxin treatment for lines and wrinkles", COSMETIC_BODY
    ),
    CHRONIC_MIGRAINE: DefaultTemplate(
        "Consent to botulinum toxin treatment for chronic migraine", MIGRAINE_BODY
    ),
    HYPERHIDROSIS: DefaultTemplate(
        "Consent to botulinum toxin treatment for excessive sweating", HYPERHIDROSIS_BODY
    ),
    OTHER_MEDICAL: DefaultTemplate(
        "Consent to botulinum toxin treatment for a medical condition", OTHER_MEDICAL_BODY
    ),
    PHOTOGRAPHY: DefaultTemplate("Consent to clinical photographs", PHOTOGRAPHY_BODY),
    PHOTO_MARKETING: DefaultTemplate(
        "Consent to the use of photographs in marketing", PHOTO_MARKETING_BODY
    ),
}
