"""What the responsibility finder says, in German, English and Leichte Sprache (R3, R43).

Each text is a format string; the names in braces are filled in by the API. Further languages are
content: add a key per message.
"""

from __future__ import annotations

FINDER_MESSAGES: dict[str, dict[str, str]] = {
    "found": {
        "de": "Für Ihre Adresse ist zuständig: {name}, {address}.",
        "en": "Your address is served by: {name}, {address}.",
        "de-x-ls": "Sie wohnen in dieser Straße. Dann ist dieser Standort für Sie da: {name}. "
        "Die Adresse ist: {address}.",
    },
    "under_25": {
        "de": "Sie sind unter 25 Jahre alt. Für Sie ist die Jugendberufsagentur zuständig: "
        "{name}, {address}.",
        "en": "You are under 25. The youth employment agency serves you: {name}, {address}.",
        "de-x-ls": "Sie sind jünger als 25 Jahre. Dann ist die Jugend·berufs·agentur für Sie da: {name}. "
        "Die Adresse ist: {address}.",
    },
    "youth_hint": {
        "de": "Sind Sie unter 25 Jahre alt? Dann ist die Jugendberufsagentur für Sie zuständig: "
        "{name}, {address}.",
        "en": "Are you under 25? Then the youth employment agency serves you: {name}, {address}.",
        "de-x-ls": "Sind Sie jünger als 25 Jahre? Dann ist die Jugend·berufs·agentur für Sie da: {name}. "
        "Die Adresse ist: {address}.",
    },
    "other_jobcenter": {
        "de": "Ihre Adresse{where} gehört nicht zum Jobcenter Bremen. Zuständig ist: {jobcenter}. "
        "Bitte rufen Sie dort an: {hotline}.",
        "en": "Your address{where} is not served by Jobcenter Bremen. The responsible jobcenter is: "
        "{jobcenter}. "
        "Please call them: {hotline}.",
        "de-x-ls": "Sie wohnen nicht in der Stadt Bremen{where}. Dann ist ein anderes Jobcenter für Sie da: "
        "{jobcenter}. Bitte rufen Sie dort an. Die Telefon·nummer ist: {hotline}.",
    },
    "unknown_street": {
        "de": "Wir haben diese Straße in der Stadt Bremen nicht gefunden.{suggest} Bitte prüfen Sie die "
        "Schreibweise. Wenn Sie Ihren Standort so nicht finden, rufen Sie das Service-Center an: "
        "{hotline}. Sie können auch in die Eingangszone jedes Standorts kommen.",
        "en": "We could not find this street in the city of Bremen.{suggest} Please check the spelling. If "
        "you still cannot find your location, call the service centre: {hotline}. You can also come to the "
        "entrance zone of any location.",
        "de-x-ls": "Wir kennen diese Straße nicht.{suggest} Bitte prüfen Sie: Ist die Straße richtig "
        "geschrieben? Sie finden Ihren Standort nicht? Dann rufen Sie uns an. Die Telefon·nummer ist: "
        "{hotline}. Sie können auch zu einem Standort vom Jobcenter gehen.",
    },
    "suggest": {
        "de": " Meinten Sie: {names}?",
        "en": " Did you mean: {names}?",
        "de-x-ls": " Meinen Sie vielleicht: {names}?",
    },
    "needs_house_number": {
        "de": "Diese Straße gehört zu mehreren Standorten. Bitte geben Sie auch Ihre Hausnummer an.",
        "en": "This street belongs to several locations. Please also give your house number.",
        "de-x-ls": "Diese Straße gehört zu mehr als einem Standort. "
        "Bitte schreiben Sie auch Ihre Haus·nummer.",
    },
    "needs_postcode": {
        "de": "Diese Straße gibt es an mehreren Orten. Bitte geben Sie auch Ihre Postleitzahl an.",
        "en": "There is a street of this name in several places. Please also give your postcode.",
        "de-x-ls": "Diese Straße gibt es mehr als einmal. Bitte schreiben Sie auch Ihre Post·leit·zahl.",
    },
    "postcode_not_matching": {
        "de": "Diese Straße gibt es an mehreren Orten, aber an keinem mit der Postleitzahl {postcode}. "
        "Bitte prüfen Sie die Postleitzahl oder rufen Sie das Service-Center an: {hotline}.",
        "en": "There is a street of this name in several places, but none with the postcode {postcode}. "
        "Please check the postcode or call the service centre: {hotline}.",
        "de-x-ls": "Diese Straße gibt es mehr als einmal. Aber nicht mit der Post·leit·zahl {postcode}. "
        "Bitte prüfen Sie die Post·leit·zahl. Oder rufen Sie uns an. Die Telefon·nummer ist: {hotline}.",
    },
    "number_not_covered": {
        "de": "Für diese Hausnummer haben wir keine Zuordnung gefunden. Bitte prüfen Sie die Hausnummer oder "
        "rufen Sie das Service-Center an: {hotline}.",
        "en": "We found no location for this house number. Please check the number or call the service "
        "centre: {hotline}.",
        "de-x-ls": "Wir kennen diese Haus·nummer nicht. Bitte prüfen Sie die Haus·nummer. Oder rufen Sie uns "
        "an. Die Telefon·nummer ist: {hotline}.",
    },
    "outside_area": {
        "de": "Diese Postleitzahl gehört nicht zur Stadt Bremen. Zuständig ist das Jobcenter Ihres Wohnorts; "
        "Ihre Gemeinde nennt es Ihnen. Fragen beantwortet auch das Service-Center: {hotline}.",
        "en": "This postcode is not in the city of Bremen. The jobcenter of your place of residence is "
        "responsible; your municipality can name it. The service centre can help too: {hotline}.",
        "de-x-ls": "Diese Post·leit·zahl ist nicht in der Stadt Bremen. Dann ist ein anderes Jobcenter "
        "für Sie da. Fragen Sie bei Ihrer Gemeinde. Oder rufen Sie uns an. "
        "Die Telefon·nummer ist: {hotline}.",
    },
    # Booking refuses every channel at an inactive location (`booking.domain.resolve_slot`): the service
    # centre cannot book there either, so the number is for information, not for an appointment.
    "location_inactive": {
        "de": "Ihr Standort vergibt zurzeit keine Termine, weder online noch am Telefon. Auskunft, wie "
        "es weitergeht, erhalten Sie unter: {hotline}.",
        "en": "Your location is not giving appointments at the moment, neither online nor by phone. For "
        "information on what to do, call: {hotline}.",
        "de-x-ls": "Bei Ihrem Standort gibt es gerade keine Termine. Nicht im Internet und nicht am "
        "Telefon. Sie haben Fragen? Dann rufen Sie uns an. Die Telefon·nummer ist: {hotline}.",
    },
}

WHERE = {"de": " in {municipality}", "en": " in {municipality}", "de-x-ls": " (Sie wohnen in {municipality})"}


def finder_message(key: str, language: str, **values: str) -> str:
    texts = FINDER_MESSAGES[key]
    return (texts.get(language) or texts["de"]).format(**values)
