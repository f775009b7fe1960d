"""Show a consent text (plain text as written in the template) as readable HTML."""

from __future__ import annotations

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_BULLETS = ("• ", "- ", "* ")


def _is_bullet(line: str) -> bool:
    return line.startswith(_BULLETS)


def _is_heading(lines: list[str]) -> bool:
    first = lines[0]
    return (
        len(lines) >= 2
        and len(first) <= 80
        and not first.endswith((".", ",", ";", ":", "]"))
        and (len(lines[1]) > 80 or _is_bullet(lines[1]))
    )


def _runs(lines: list[str]) -> list[tuple[bool, list[str]]]:
    """Consecutive lines grouped as (is_bullet_list, lines)."""
    runs: list[tuple[bool, list[str]]] = []
    for line in lines:
        bullet = _is_bullet(line)
        if runs and runs[-1][0] == bullet:
            runs[-1][1].append(line)
        else:
            runs.append((bullet, [line]))
    return runs


def _block(lines: list[str]) -> str:
    if lines[0].startswith("[") and lines[-1].endswith("]"):
        return f'<p class="review-note">{escape(" ".join(lines))}</p>'
    parts: list[str] = []
    warning = False
    if _is_heading(lines):
        warning = "warning" in lines[0].lower()
        parts.append(f"<h3>{escape(lines[0])}</h3>")
        lines = lines[1:]
    for bullet, run in _runs(lines):
        if bullet:
            parts.append(
                "<ul>" + "".join(f"<li>{escape(i[2:].strip())}</li>" for i in run) + "</ul>"
            )
        else:
            parts.append("<p>" + "<br>".join(escape(p) for p in run) + "</p>")
    html = "".join(parts)
    # A boxed warning stays boxed, on screen and on paper.
    return f'<div class="boxed-warning">{html}</div>' if warning else html


@register.filter
def consent_text(text: str) -> SafeString:
    """Blank lines make paragraphs; a short first line followed by prose is a heading
    (boxed when it names a warning); lines starting with "• ", "- " or "* " are a list;
    a paragraph in [square brackets] is a note to the clinic. Everything is escaped."""
    blocks = []
    for raw in str(text or "").replace("\r\n", "\n").split("\n\n"):
        lines = [line.strip() for line in raw.strip().split("\n") if line.strip()]
        if lines:
            blocks.append(_block(lines))
    return mark_safe("\n".join(blocks))  # noqa: S308  (every piece is escaped above)
