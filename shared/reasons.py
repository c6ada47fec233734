"""What the jobcenter says when it moved or cancelled an appointment on its own (`SystemReason`), in each
language: booking keeps the German one with the appointment (staff read it in the file), the notifier
words the mail in the customer's language. `{location}` is the location that took a concern over."""

from __future__ import annotations

from shared.events.appointment import SystemReason

# (the mail: cancellation or reschedule, the reason) -> language -> text
SYSTEM_REASONS: dict[tuple[str, str], dict[str, str]] = {
    ("cancellation", SystemReason.MASS_CHANGE): {
        "de": "Der Standort kann Ihren Termin an diesem Tag leider nicht anbieten, und es war kein"
        " gleichwertiger Termin frei. Bitte buchen Sie einen neuen Termin.",
        "en": "Unfortunately the location cannot offer your appointment on that day, and no equivalent"
        " appointment was free. Please book a new appointment.",
        "de-x-ls": "Der Standort kann an dem Tag leider keine Termine machen. Es gab keinen anderen"
        " passenden Termin. Bitte buchen Sie einen neuen Termin.",
    },
    ("cancellation", SystemReason.HANDED_OVER): {
        "de": "Ihr Anliegen wurde an {location} übergeben. Wir rufen Sie zurück.",
        "en": "Your concern has been handed over to {location}. We will call you back.",
        "de-x-ls": "Ein anderer Standort kümmert sich um Ihr Anliegen: {location}. Wir rufen Sie an.",
    },
    # A mass change may move an appointment later on the same day: "the original time", not "day".
    ("reschedule", SystemReason.MASS_CHANGE): {
        "de": "Der Standort kann Ihren Termin zur bisherigen Zeit leider nicht anbieten. Wir haben ihn"
        " deshalb auf die nächste gleichwertige freie Zeit verlegt. Passt Ihnen die neue Zeit nicht,"
        " können Sie den Termin mit dem Link unten verschieben oder absagen.",
        "en": "Unfortunately the location cannot offer your appointment at the original time, so we have"
        " moved it to the next equivalent free time. If the new time does not suit you, you can move or"
        " cancel the appointment with the link below.",
        "de-x-ls": "Der Standort kann zu der alten Zeit leider keinen Termin machen. Darum haben wir den"
        " Termin verlegt. Die neue Zeit passt Ihnen nicht? Dann können Sie den Termin verschieben oder"
        " absagen. Der Link ist unten.",
    },
}


def worded(mail: str, code: str, language: str, *, location: str = "") -> str:
    """The reason `code` in `language` (German where the language has none), or "" for no such reason."""
    texts = SYSTEM_REASONS.get((mail, code))
    if texts is None:
        return ""
    return (texts.get(language) or texts["de"]).format(location=location)
