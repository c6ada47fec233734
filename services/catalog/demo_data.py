"""Demo data of Jobcenter Bremen: the central catalogue of concerns, the Geschäftsstellen and the
Jugendberufsagentur with their groups, offers, windows and closures, the other jobcenters around Bremen,
and the internal allow-list. The finder's street table is in `demo_streets`.

WHAT IS REAL AND WHAT IS NOT
- The concerns and their German names are those of directive 3.2 (`DIRECTIVE_3_2` lists them exactly as
  the directive does; a test compares it with the directive's text).
- The locations are the real Geschäftsstellen of Jobcenter Bremen (Mitte, Nord in Vegesack, Ost, Süd,
  West) and the Jugendberufsagentur, but every address and phone number carries `verified`: only what a
  public source named is marked with that source, and even those were not checked with the jobcenter.
  Addresses marked `verified: False` without a source are DEMO DATA (invented, plausible).
- Service points, windows, durations, processing times and closures are DEMO DATA.
- Hotlines of other jobcenters without a source use the number range the Bundesnetzagentur keeps for
  film and television (040 66969 xxx), so that nobody real is called: DEMO DATA.
"""

from __future__ import annotations

from typing import Any

Text = dict[str, str]

# --- directive 3.2 (R15), word for word -------------------------------------------------------------

DIRECTIVE_3_2: dict[str, list[str]] = {
    "Eingangszone": [
        "Neuantrag stellen",
        "Mitteilung einer Veränderung",
        "Mitteilung Arbeitsaufnahme / Aufnahme einer Ausbildung",
    ],
    "Eingangszone Jugendberufsagentur": [
        "Mitteilung Arbeitsaufnahme / Aufnahme einer Ausbildung",
    ],
    "Leistungsgewährung": [
        "Fragen zum Leistungsbezug",
        "Umzugswunsch",
        "Nachfragen zum Bearbeitungsstand",
        "Anrechnung von Einkommen",
        "Fragen zum Bescheid",
        "Fragen zu einer Rückforderung",
        "Zuzug in eine / Auszug aus einer BG",
        "Fragen zu den Bedarfen der Unterkunft",
        "Finanzielle Notlage / ausbleibende Zahlung",
        "Drohende / eingetretene Energiesperre",
        "Pfändungsschutzkonto",
    ],
}

# The optional concerns of 3.2 ("nicht abschließend"), word for word.
DIRECTIVE_3_2_OPTIONAL: list[str] = [
    "Weiterbewilligungsantrag stellen",
    "Darlehen für Strom-, Gas- oder Wasserschulden",
    "Mitteilung Schwangerschaft",
    "Mitteilung Geburt",
    "Mitteilung zur Änderung der Bankverbindung (weitere Nachweise notwendig)",
    "Qualifizierung",
    "Stellenangebote",
    "Unterstützung bei der Arbeitsaufnahme",
    "Aktuelle berufliche Situation",
    "Bildung und Teilhabe (soziale Teilhabe)",
    "Erstellung von Bewerbungsunterlagen",
    "Hilfe in schwierigen Lebenslagen",
    "Änderung von Kontaktdaten",
    "Ausbau der aktuellen Selbstständigkeit",
    "Beendigung der aktuellen Selbstständigkeit",
    "Aktuelle gesundheitliche Situation",
]

# The section of 3.2 each mandatory list belongs to, as the group kind that offers it.
DIRECTIVE_SECTION_KINDS = {
    "Eingangszone": "entrance_zone",
    "Eingangszone Jugendberufsagentur": "jba_entrance_zone",
    "Leistungsgewährung": "benefits_team",
}

# --- documents to bring (R11) -----------------------------------------------------------------------


def _t(de: str, en: str, ls: str) -> Text:
    return {"de": de, "en": en, "de-x-ls": ls}


DOC_ID = _t("Personalausweis oder Reisepass", "Identity card or passport", "Ihren Ausweis oder Pass")
DOC_REGISTRATION = _t("Meldebescheinigung", "Certificate of registration", "Ihre Melde·bescheinigung")
DOC_HEALTH_INSURANCE = _t(
    "Nachweis der Krankenversicherung", "Proof of health insurance", "Ein Papier von Ihrer Kranken·kasse"
)
DOC_RENT = _t("Mietvertrag", "Tenancy agreement", "Ihren Miet·vertrag")
DOC_UTILITY_BILL = _t(
    "Nebenkostenabrechnung",
    "Service charge statement (utility bill)",
    "Ihre Neben·kosten·abrechnung",
)
DOC_BANK_STATEMENTS = _t(
    "Kontoauszüge der letzten drei Monate",
    "Bank statements of the last three months",
    "Ihre Konto·auszüge von den letzten 3 Monaten",
)
DOC_PAY_SLIPS = _t("Lohn- oder Gehaltsabrechnungen", "Pay slips", "Ihre Lohn·zettel")
DOC_NOTICE = _t(
    "Den Bescheid oder das Schreiben, um das es geht",
    "The decision notice or letter concerned",
    "Den Brief vom Jobcenter",
)
DOC_WORK_CONTRACT = _t(
    "Arbeits- oder Ausbildungsvertrag",
    "Employment or training contract",
    "Ihren Arbeits·vertrag oder Ausbildungs·vertrag",
)
DOC_BIRTH_CERTIFICATE = _t(
    "Geburtsurkunde des Kindes", "The child's birth certificate", "Die Geburts·urkunde von Ihrem Kind"
)
DOC_CHILD_REGISTRATION = _t(
    "Meldebescheinigung des Kindes",
    "The child's certificate of registration",
    "Die Melde·bescheinigung von Ihrem Kind",
)
DOC_MUTTERPASS = _t(
    "Mutterpass (für den Mehrbedarf bei Schwangerschaft)",
    "Maternity record (Mutterpass), for the additional allowance in pregnancy",
    "Ihren Mutter·pass",
)
DOC_SUPPLY_NOTICE = _t(
    "Gelber oder roter Zettel des Versorgers (Sperrandrohung oder Sperrankündigung)",
    "The yellow or red notice of your supplier (threat or announcement of the cut-off)",
    "Den gelben oder roten Zettel vom Strom·anbieter oder Gas·anbieter",
)
DOC_SUPPLY_BILL = _t(
    "Letzte Jahresabrechnung des Versorgers",
    "Your supplier's last annual bill",
    "Die letzte Rechnung für Strom, Gas oder Wasser",
)
DOC_FLAT_OFFER = _t(
    "Mietangebot der neuen Wohnung", "The rental offer for the new flat", "Das Angebot für die neue Wohnung"
)
DOC_NEW_ACCOUNT = _t(
    "Nachweis der neuen Bankverbindung (z. B. Bestätigung der Kontoeröffnung)",
    "Proof of the new bank account (e.g. the bank's confirmation)",
    "Ein Papier von der Bank über das neue Konto",
)
DOC_BUSINESS_FIGURES = _t(
    "Einnahmen-Überschuss-Rechnung oder betriebswirtschaftliche Auswertung",
    "Profit and loss statement of your business",
    "Die Zahlen von Ihrer Firma",
)
DOC_CV = _t("Lebenslauf und Zeugnisse", "CV and certificates", "Ihren Lebens·lauf und Ihre Zeugnisse")
DOC_COSTS = _t(
    "Nachweise über die Kosten (z. B. Klassenfahrt, Sportverein)",
    "Proof of the costs (e.g. school trip, sports club)",
    "Die Rechnung für die Kosten",
)
DOC_MISSING_PAYMENT = _t(
    "Aktueller Kontoauszug, der die fehlende Zahlung zeigt",
    "A current bank statement that shows the missing payment",
    "Ihren neuen Konto·auszug",
)
DOC_HOUSEHOLD_MEMBER = _t(
    "Ausweis und Einkommensnachweise der Person, die ein- oder auszieht",
    "Identity document and proof of income of the person moving in or out",
    "Den Ausweis von der Person. Und Papiere über ihr Geld.",
)

LINK_ONLINE = {
    "label": _t(
        "Antrag online stellen (jobcenter.digital)", "Apply online (jobcenter.digital)", "Antrag im Internet"
    ),
    "url": "https://www.jobcenter.digital",
}

# --- the central catalogue (R14) --------------------------------------------------------------------
# Processing times in the info texts are DEMO DATA.

EZ = ["entrance_zone"]
EZ_JBA = ["entrance_zone", "jba_entrance_zone"]
BENEFITS = ["benefits_team"]

CONCERNS: list[dict[str, Any]] = [
    # Eingangszone (mandatory)
    {
        "id": "neuantrag",
        "group_kinds": EZ,
        "name": _t("Neuantrag stellen", "Make a new application", "Zum ersten Mal Bürgergeld beantragen"),
        "info": _t(
            "Wir nehmen Ihre Daten auf und erklären Ihnen alles Wichtige. Über einen vollständigen Antrag "
            "entscheiden wir in der Regel innerhalb von drei Wochen. Sie können den Antrag auch online "
            "stellen.",
            "We take down your details and explain everything important. We usually decide on a complete "
            "application within three weeks. You can also apply online.",
            "Wir schreiben Ihre Daten auf. Wir erklären Ihnen alles. Nach etwa 3 Wochen bekommen Sie einen "
            "Brief. Sie können den Antrag auch im Internet stellen.",
        ),
        "links": [LINK_ONLINE],
        "documents": [
            DOC_ID,
            DOC_REGISTRATION,
            DOC_RENT,
            DOC_UTILITY_BILL,
            DOC_BANK_STATEMENTS,
            DOC_PAY_SLIPS,
            DOC_HEALTH_INSURANCE,
        ],
        "default_duration_minutes": 60,
    },
    {
        "id": "veraenderung",
        "group_kinds": EZ,
        "name": _t("Mitteilung einer Veränderung", "Report a change", "Bei mir hat sich etwas geändert"),
        "info": _t(
            "Zum Beispiel eine neue Adresse, eine neue Miete oder ein neues Einkommen. Bitte teilen Sie "
            "Veränderungen sofort mit.",
            "For example a new address, a new rent or a new income. Please report changes straight away.",
            "Zum Beispiel: Sie haben eine neue Adresse. Oder Sie bekommen mehr Geld. Sagen Sie uns das bitte "
            "sofort.",
        ),
        "documents": [
            DOC_ID,
            _t("Nachweis der Veränderung", "Proof of the change", "Ein Papier über die Änderung"),
        ],
        "default_duration_minutes": 15,
    },
    {
        "id": "arbeitsaufnahme",
        "group_kinds": EZ_JBA,
        "name": _t(
            "Mitteilung Arbeitsaufnahme / Aufnahme einer Ausbildung",
            "Report that you start work or training",
            "Ich fange eine Arbeit oder eine Ausbildung an",
        ),
        "info": _t(
            "Ein kurzer Termin: Wir nehmen Ihren Vertrag auf und sagen Ihnen, wie es mit Ihren Leistungen "
            "weitergeht.",
            "A short appointment: we take note of your contract and tell you what happens to your benefits.",
            "Ein kurzer Termin. Sie zeigen uns Ihren Vertrag. Wir sagen Ihnen: So geht es mit Ihrem Geld "
            "weiter.",
        ),
        "documents": [DOC_ID, DOC_WORK_CONTRACT],
        "default_duration_minutes": 10,
    },
    # Leistungsgewährung (mandatory)
    {
        "id": "leistungsbezug",
        "group_kinds": BENEFITS,
        "name": _t(
            "Fragen zum Leistungsbezug",
            "Questions about your benefits",
            "Fragen zu meinem Geld vom Jobcenter",
        ),
        "info": _t(
            "Allgemeine Fragen zu Ihren Leistungen, zur Höhe und zur Auszahlung.",
            "General questions about your benefits, their amount and their payment.",
            "Sie haben Fragen zu Ihrem Geld vom Jobcenter.",
        ),
        "documents": [DOC_ID, DOC_NOTICE],
        "default_duration_minutes": 20,
    },
    {
        "id": "umzugswunsch",
        "group_kinds": BENEFITS,
        "name": _t("Umzugswunsch", "You want to move", "Ich will umziehen"),
        "info": _t(
            "Bitte unterschreiben Sie einen neuen Mietvertrag erst, wenn wir der Übernahme der neuen "
            "Kosten zugestimmt haben.",
            "Please sign a new tenancy agreement only after we have agreed to cover the new costs.",
            "Unterschreiben Sie den neuen Miet·vertrag erst nach dem Termin. Erst müssen wir Ja sagen.",
        ),
        "documents": [DOC_ID, DOC_FLAT_OFFER, DOC_RENT],
        "default_duration_minutes": 30,
    },
    {
        "id": "bearbeitungsstand",
        "group_kinds": BENEFITS,
        "name": _t(
            "Nachfragen zum Bearbeitungsstand", "Ask about the processing status", "Wie weit ist mein Antrag?"
        ),
        "info": _t(
            "Anträge werden in der Regel innerhalb von drei Wochen bearbeitet, wenn alle Unterlagen "
            "vorliegen.",
            "Applications are usually processed within three weeks once all documents are in.",
            "Meistens dauert es 3 Wochen. Dann ist Ihr Antrag fertig. Aber nur, wenn alle Papiere da sind.",
        ),
        "documents": [DOC_ID],
        "default_duration_minutes": 10,
    },
    {
        "id": "einkommen",
        "group_kinds": BENEFITS,
        "name": _t("Anrechnung von Einkommen", "How income is counted", "Ich habe Einkommen"),
        "info": _t(
            "Wie Lohn, Kindergeld oder andere Einnahmen auf Ihre Leistungen angerechnet werden.",
            "How wages, child benefit or other income are counted against your benefits.",
            "Sie bekommen Geld von der Arbeit oder Kinder·geld. Wir erklären: So wird das gerechnet.",
        ),
        "documents": [DOC_ID, DOC_PAY_SLIPS, DOC_BANK_STATEMENTS],
        "default_duration_minutes": 20,
    },
    {
        "id": "bescheid",
        "group_kinds": BENEFITS,
        "name": _t("Fragen zum Bescheid", "Questions about a decision notice", "Fragen zu einem Bescheid"),
        "info": _t(
            "Wir erklären Ihnen Ihren Bescheid. Beachten Sie die Frist für einen Widerspruch im Bescheid.",
            "We explain your decision notice. Note the deadline for an objection stated in the notice.",
            "Ein Bescheid ist ein Brief vom Jobcenter. Wir erklären Ihnen den Brief.",
        ),
        "documents": [DOC_ID, DOC_NOTICE],
        "default_duration_minutes": 20,
    },
    {
        "id": "rueckforderung",
        "group_kinds": BENEFITS,
        "name": _t(
            "Fragen zu einer Rückforderung",
            "Questions about a claim for repayment",
            "Ich soll Geld zurückzahlen",
        ),
        "info": _t(
            "Eine Ratenzahlung können Sie auch direkt mit dem Inkasso-Service der Bundesagentur für Arbeit "
            "vereinbaren.",
            "You can also agree on payment by instalments directly with the debt collection service of the "
            "Federal Employment Agency.",
            "Sie können das Geld auch in kleinen Teilen zurückzahlen. Das können Sie mit dem Inkasso-Service "
            "besprechen.",
        ),
        "documents": [DOC_ID, DOC_NOTICE],
        "default_duration_minutes": 30,
    },
    {
        "id": "bg-zuzug-auszug",
        "group_kinds": BENEFITS,
        "name": _t(
            "Zuzug in eine / Auszug aus einer BG",
            "Someone moves into or out of your household",
            "Jemand zieht bei mir ein oder aus",
        ),
        "info": _t(
            "BG heißt Bedarfsgemeinschaft: die Menschen, die mit Ihnen zusammen Leistungen bekommen.",
            "Household means the benefit household: the people who receive benefits together with you.",
            "Zum Beispiel: Ein Mensch zieht bei Ihnen ein. Oder Ihr Kind zieht aus. "
            "Das müssen Sie uns sagen.",
        ),
        "documents": [DOC_ID, DOC_HOUSEHOLD_MEMBER, DOC_RENT],
        "default_duration_minutes": 30,
    },
    {
        "id": "unterkunft",
        "group_kinds": BENEFITS,
        "name": _t(
            "Fragen zu den Bedarfen der Unterkunft",
            "Questions about housing and heating costs",
            "Fragen zu Miete und Heizung",
        ),
        "info": _t(
            "Fragen zu Miete, Nebenkosten und Heizkosten.",
            "Questions about rent, service charges and heating costs.",
            "Sie haben Fragen zur Miete oder zur Heizung.",
        ),
        "documents": [DOC_ID, DOC_RENT, DOC_UTILITY_BILL],
        "default_duration_minutes": 30,
    },
    {
        "id": "notlage",
        "group_kinds": BENEFITS,
        "name": _t(
            "Finanzielle Notlage / ausbleibende Zahlung",
            "Financial emergency / payment missing",
            "Ich habe kein Geld mehr. Das Geld vom Jobcenter ist nicht da.",
        ),
        "info": _t(
            "Notfall: Diese Termine bleiben auch in den Tagen um den Monatswechsel buchbar.",
            "Emergency: these appointments stay bookable in the days around the turn of the month.",
            "Das ist ein Not·fall. Dafür gibt es auch am Monats·ende Termine.",
        ),
        "documents": [DOC_ID, DOC_MISSING_PAYMENT],
        "emergency": True,
        "sensitive": True,
        "default_duration_minutes": 20,
    },
    {
        "id": "energiesperre",
        "group_kinds": BENEFITS,
        "name": _t(
            "Drohende / eingetretene Energiesperre",
            "Energy cut-off threatened or in place",
            "Mein Strom oder Gas wird abgestellt",
        ),
        "info": _t(
            "Notfall: Bringen Sie den gelben oder roten Zettel Ihres Versorgers mit. Diese Termine bleiben "
            "auch um den Monatswechsel buchbar.",
            "Emergency: bring the yellow or red notice of your supplier. These appointments stay bookable "
            "around the turn of the month.",
            "Das ist ein Not·fall. Bringen Sie den gelben oder roten Zettel mit.",
        ),
        "documents": [DOC_ID, DOC_SUPPLY_NOTICE, DOC_SUPPLY_BILL],
        "emergency": True,
        "sensitive": True,
        "default_duration_minutes": 30,
    },
    {
        "id": "p-konto",
        "group_kinds": BENEFITS,
        "name": _t(
            "Pfändungsschutzkonto",
            "Garnishment protection account (P-Konto)",
            "Pfändungs·schutz·konto (P-Konto)",
        ),
        "info": _t(
            "Wir stellen Ihnen die Bescheinigung für einen höheren Freibetrag auf Ihrem P-Konto aus.",
            "We issue the certificate for a higher exemption on your P-Konto.",
            "Sie bekommen von uns ein Papier für Ihre Bank. Dann ist mehr Geld auf dem Konto geschützt.",
        ),
        "documents": [DOC_ID, DOC_NOTICE],
        "sensitive": True,
        "default_duration_minutes": 15,
    },
    # optional concerns of 3.2
    {
        "id": "weiterbewilligung",
        "group_kinds": EZ,
        "name": _t(
            "Weiterbewilligungsantrag stellen", "Apply for continued benefits", "Weiter Bürgergeld bekommen"
        ),
        "info": _t(
            "Stellen Sie den Antrag rechtzeitig vor dem Ende Ihres Bewilligungszeitraums, gern auch online.",
            "Apply in good time before your current award ends; you can also apply online.",
            "Stellen Sie den Antrag früh genug. Das geht auch im Internet.",
        ),
        "links": [LINK_ONLINE],
        "documents": [DOC_ID, DOC_BANK_STATEMENTS, DOC_PAY_SLIPS],
        "default_duration_minutes": 30,
    },
    {
        "id": "darlehen-energie",
        "group_kinds": BENEFITS,
        "name": _t(
            "Darlehen für Strom-, Gas- oder Wasserschulden",
            "Loan for electricity, gas or water debts",
            "Ich habe Schulden für Strom, Gas oder Wasser",
        ),
        "documents": [DOC_ID, DOC_SUPPLY_NOTICE, DOC_SUPPLY_BILL, DOC_BANK_STATEMENTS],
        "sensitive": True,
        "default_duration_minutes": 30,
    },
    {
        "id": "schwangerschaft",
        "group_kinds": EZ_JBA,
        "name": _t("Mitteilung Schwangerschaft", "Report a pregnancy", "Ich bin schwanger"),
        "info": _t(
            "Ab der 13. Schwangerschaftswoche gibt es einen Mehrbedarf. Bringen Sie den Mutterpass mit.",
            "From the 13th week of pregnancy there is an additional allowance. Bring your maternity record.",
            "Sie bekommen mehr Geld, wenn Sie schwanger sind. Bringen Sie Ihren Mutter·pass mit.",
        ),
        "documents": [DOC_ID, DOC_MUTTERPASS],
        "sensitive": True,
        "default_duration_minutes": 10,
    },
    {
        "id": "geburt",
        "group_kinds": EZ_JBA,
        "name": _t("Mitteilung Geburt", "Report a birth", "Mein Kind ist geboren"),
        "documents": [DOC_ID, DOC_BIRTH_CERTIFICATE, DOC_CHILD_REGISTRATION],
        "default_duration_minutes": 10,
    },
    {
        "id": "bankverbindung",
        "group_kinds": EZ_JBA,
        "name": _t(
            "Mitteilung zur Änderung der Bankverbindung (weitere Nachweise notwendig)",
            "Change of bank account (further proof needed)",
            "Ich habe ein neues Bank·konto",
        ),
        "info": _t(
            "Aus Sicherheitsgründen nur persönlich und mit Nachweisen.",
            "For security reasons only in person and with proof.",
            "Das geht nur vor Ort. Bringen Sie die Papiere mit.",
        ),
        "documents": [DOC_ID, DOC_NEW_ACCOUNT],
        "default_duration_minutes": 10,
    },
    {
        "id": "qualifizierung",
        "group_kinds": EZ_JBA,
        "name": _t("Qualifizierung", "Training and qualification", "Ich will etwas Neues lernen"),
        "documents": [DOC_CV],
        "default_duration_minutes": 45,
    },
    {
        "id": "stellenangebote",
        "group_kinds": EZ_JBA,
        "name": _t("Stellenangebote", "Job offers", "Ich suche eine Arbeit"),
        "documents": [DOC_CV],
        "default_duration_minutes": 30,
    },
    {
        "id": "unterstuetzung-arbeitsaufnahme",
        "group_kinds": EZ_JBA,
        "name": _t(
            "Unterstützung bei der Arbeitsaufnahme",
            "Support when starting work",
            "Hilfe beim Start in die Arbeit",
        ),
        "documents": [DOC_WORK_CONTRACT],
        "default_duration_minutes": 30,
    },
    {
        "id": "berufliche-situation",
        "group_kinds": EZ_JBA,
        "name": _t("Aktuelle berufliche Situation", "Your current work situation", "Meine Arbeit jetzt"),
        "documents": [DOC_CV],
        "default_duration_minutes": 30,
    },
    {
        "id": "bildung-teilhabe",
        "group_kinds": BENEFITS,
        "name": _t(
            "Bildung und Teilhabe (soziale Teilhabe)",
            "Education and participation (social participation)",
            "Geld für Schule, Sport und Freizeit von Kindern",
        ),
        "documents": [DOC_ID, DOC_COSTS],
        "default_duration_minutes": 20,
    },
    {
        "id": "bewerbungsunterlagen",
        "group_kinds": EZ_JBA,
        "name": _t(
            "Erstellung von Bewerbungsunterlagen",
            "Preparing your application documents",
            "Hilfe bei der Bewerbung",
        ),
        "documents": [DOC_CV],
        "default_duration_minutes": 45,
    },
    {
        "id": "schwierige-lebenslagen",
        "group_kinds": EZ_JBA,
        "name": _t(
            "Hilfe in schwierigen Lebenslagen",
            "Help in difficult situations",
            "Ich brauche Hilfe. Mein Leben ist gerade schwer.",
        ),
        "sensitive": True,
        "default_duration_minutes": 45,
    },
    {
        "id": "kontaktdaten",
        "group_kinds": EZ_JBA,
        "name": _t(
            "Änderung von Kontaktdaten",
            "Change of contact details",
            "Ich habe eine neue Telefon·nummer oder E-Mail-Adresse",
        ),
        "documents": [DOC_ID],
        "default_duration_minutes": 10,
    },
    {
        "id": "selbststaendigkeit-ausbau",
        "group_kinds": BENEFITS,
        "name": _t(
            "Ausbau der aktuellen Selbstständigkeit",
            "Expanding your self-employment",
            "Ich will meine eigene Firma größer machen",
        ),
        "documents": [DOC_ID, DOC_BUSINESS_FIGURES],
        "default_duration_minutes": 45,
    },
    {
        "id": "selbststaendigkeit-ende",
        "group_kinds": BENEFITS,
        "name": _t(
            "Beendigung der aktuellen Selbstständigkeit",
            "Ending your self-employment",
            "Ich höre mit meiner eigenen Firma auf",
        ),
        "documents": [DOC_ID, DOC_BUSINESS_FIGURES],
        "default_duration_minutes": 30,
    },
    {
        "id": "gesundheit",
        "group_kinds": EZ_JBA,
        "name": _t("Aktuelle gesundheitliche Situation", "Your current health situation", "Meine Gesundheit"),
        "info": _t(
            "Ärztliche Unterlagen bringen Sie nur mit, wenn Sie sie zeigen möchten.",
            "Bring medical documents only if you wish to show them.",
            "Papiere vom Arzt bringen Sie nur mit, wenn Sie das wollen.",
        ),
        "sensitive": True,
        "default_duration_minutes": 30,
    },
]

# --- locations (R13) --------------------------------------------------------------------------------

# Jobcenter Bremen's service centre. Source: advent.jobcenter-bremen.de (2018): "Servicecenter ...
# Montag bis Freitag von 8:00-18:00 Uhr unter der Telefonnummer 0421 / 566-0"; not checked since.
SERVICE_CENTRE = "0421 566-0"


def _group(gid: str, kind: str, de: str, en: str, ls: str, points: int) -> dict[str, Any]:
    return {"id": gid, "kind": kind, "name": _t(de, en, ls), "service_points": points}


def _ez(location: str, points: int) -> dict[str, Any]:
    return _group(f"{location}-ez", "entrance_zone", "Eingangszone", "Entrance zone", "Empfang", points)


def _lt(location: str, points: int) -> dict[str, Any]:
    return _group(
        f"{location}-lt", "benefits_team", "Leistungsteam", "Benefits team", "Team für Ihr Geld", points
    )


def _lt_income(location: str, points: int) -> dict[str, Any]:
    return _group(
        f"{location}-lt-ek",
        "benefits_team",
        "Leistungsteam Einkommen und Selbstständigkeit",
        "Benefits team income and self-employment",
        "Team für Einkommen und eigene Firma",
        points,
    )


Window = tuple[str, int, str, str, int, bool]  # group suffix, weekday, start, end, service points, evening


def _week(evening_day: int, ez: int, lt: int, ek: int | None) -> list[Window]:
    """A location's week (DEMO DATA): the entrance zone Monday to Friday mornings; the benefits team four
    mornings and one long day until 18:00 with the evening reserved for people in work (R12); the income
    team two mornings and the same evening."""
    windows: list[Window] = []
    for day in range(5):
        windows.append(("ez", day, "08:00", "12:00", ez, False))
    windows.append(("ez", evening_day, "14:00", "16:00", max(1, ez // 2), False))
    windows.append(("ez", evening_day, "16:00", "18:00", max(1, ez // 3), True))
    for day in range(5):
        if day == evening_day:
            windows.append(("lt", day, "13:00", "16:00", lt, False))
            windows.append(("lt", day, "16:00", "18:00", max(1, lt // 3), True))
        else:
            windows.append(("lt", day, "08:30", "12:30", lt, False))
    if ek is not None:
        for day in (1, 3):
            windows.append(("lt-ek", day, "09:00", "12:00", ek, False))
        windows.append(("lt-ek", evening_day, "16:00", "18:00", 1, True))
    return windows


Offer = tuple[str, int, tuple[str, ...]]  # group suffix, minutes, modes
BOTH = ("in_person", "phone")
IN_PERSON = ("in_person",)

# What every Geschäftsstelle offers (durations 10-60 minutes, R16), DEMO DATA.
STANDARD_OFFERS: dict[str, Offer] = {
    "neuantrag": ("ez", 60, IN_PERSON),
    "veraenderung": ("ez", 15, BOTH),
    "arbeitsaufnahme": ("ez", 10, BOTH),
    "leistungsbezug": ("lt", 20, BOTH),
    "umzugswunsch": ("lt", 30, BOTH),
    "bearbeitungsstand": ("lt", 10, BOTH),
    "einkommen": ("lt-ek", 20, BOTH),
    "bescheid": ("lt", 20, BOTH),
    "rueckforderung": ("lt", 30, BOTH),
    "bg-zuzug-auszug": ("lt", 30, BOTH),
    "unterkunft": ("lt", 30, BOTH),
    "notlage": ("lt", 20, BOTH),
    "energiesperre": ("lt", 30, BOTH),
    "p-konto": ("lt", 15, IN_PERSON),
    # optional ones most offices offer
    "weiterbewilligung": ("ez", 30, BOTH),
    "schwangerschaft": ("ez", 10, BOTH),
    "geburt": ("ez", 10, BOTH),
    "bankverbindung": ("ez", 10, IN_PERSON),
    "kontaktdaten": ("ez", 10, BOTH),
    "selbststaendigkeit-ausbau": ("lt-ek", 45, BOTH),
    "selbststaendigkeit-ende": ("lt-ek", 30, BOTH),
}

CHRISTMAS_CLOSURES = [
    {"first": "2026-12-24", "last": "2026-12-24", "group": None, "reason": "Heiligabend"},
    {"first": "2026-12-31", "last": "2026-12-31", "group": None, "reason": "Silvester"},
    {"first": "2027-12-24", "last": "2027-12-24", "group": None, "reason": "Heiligabend"},
    {"first": "2027-12-31", "last": "2027-12-31", "group": None, "reason": "Silvester"},
]


def _office(
    location_id: str,
    name: str,
    street: str,
    postcode: str,
    address_source: str | None,
    *,
    sort_order: int,
    points: tuple[int, int, int],
    evening_day: int,
    extra_offers: dict[str, Offer] | None = None,
    durations: dict[str, int] | None = None,
    lead_time: dict[str, int] | None = None,
    month_change_block: dict[str, int] | None = None,
    closures: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    ez, lt, ek = points
    offers = dict(STANDARD_OFFERS)
    offers.update(extra_offers or {})
    for concern_id, minutes in (durations or {}).items():
        group, _, modes = offers[concern_id]
        offers[concern_id] = (group, minutes, modes)
    return {
        "id": location_id,
        "name": name,
        "street": street,
        "postcode": postcode,
        "city": "Bremen",
        "phone": None,
        "hotline": SERVICE_CENTRE,
        # Not verified with Jobcenter Bremen: see the module's docstring.
        "verified": False,
        "address_source": address_source,
        "sort_order": sort_order,
        "groups": [_ez(location_id, ez), _lt(location_id, lt), _lt_income(location_id, ek)],
        "windows": _week(evening_day, ez, lt, ek),
        "offers": offers,
        "lead_time": lead_time or {"min_minutes": 0, "max_days": 56},
        "month_change_block": month_change_block,
        "closures": CHRISTMAS_CLOSURES + (closures or []),
    }


LOCATIONS: list[dict[str, Any]] = [
    _office(
        "mitte",
        "Geschäftsstelle Mitte",
        "Doventorsteinweg 48-52",
        "28195",
        None,
        sort_order=10,
        points=(6, 10, 3),
        evening_day=3,
        extra_offers={"stellenangebote": ("ez", 30, BOTH), "bildung-teilhabe": ("lt", 20, BOTH)},
    ),
    _office(
        "nord",
        "Geschäftsstelle Nord (Vegesack)",
        "Hermann-Fortmann-Straße 24",
        "28757",
        # Weser-Kurier (2014) on the planned central building of Jobcenter Bremen-Nord at this address.
        "weser-kurier.de: planned site of the central jobcenter for Bremen-Nord",
        sort_order=20,
        points=(4, 7, 2),
        evening_day=1,
        durations={"veraenderung": 10, "neuantrag": 50},
        extra_offers={"darlehen-energie": ("lt", 30, BOTH), "schwierige-lebenslagen": ("ez", 45, IN_PERSON)},
        lead_time={"min_minutes": 60, "max_days": 42},
    ),
    _office(
        "ost",
        "Geschäftsstelle Ost",
        "Otto-Brenner-Allee 44",
        "28325",
        None,
        sort_order=30,
        points=(5, 9, 3),
        evening_day=2,
        extra_offers={
            "unterstuetzung-arbeitsaufnahme": ("ez", 30, BOTH),
            "bildung-teilhabe": ("lt", 20, BOTH),
        },
    ),
    _office(
        "sued",
        "Geschäftsstelle Süd",
        "Neuenlander Straße 112",
        "28199",
        None,
        sort_order=40,
        points=(5, 8, 2),
        evening_day=3,
        extra_offers={"darlehen-energie": ("lt", 30, BOTH), "gesundheit": ("ez", 30, IN_PERSON)},
        closures=[{"first": "2026-12-10", "last": "2026-12-10", "group": "lt", "reason": "Teamtag"}],
    ),
    _office(
        "west",
        "Geschäftsstelle West",
        "Gröpelinger Heerstraße 226",
        "28237",
        None,
        sort_order=50,
        points=(5, 9, 3),
        evening_day=0,
        extra_offers={"stellenangebote": ("ez", 30, BOTH), "darlehen-energie": ("lt", 30, BOTH)},
        # R18: the last day of a month and the first two of the next: emergency concerns only.
        month_change_block={"last_days": 1, "first_days": 2},
    ),
    {
        "id": "jba",
        "name": "Jugendberufsagentur Bremen",
        "street": "Doventorsteinweg 44",
        "postcode": "28195",
        "city": "Bremen",
        "phone": None,
        "hotline": SERVICE_CENTRE,
        "verified": False,
        "address_source": None,
        "sort_order": 60,
        "groups": [
            _group(
                "jba-ez",
                "jba_entrance_zone",
                "Eingangszone Jugendberufsagentur",
                "Entrance zone of the youth employment agency",
                "Empfang Jugend·berufs·agentur",
                4,
            ),
            _group(
                "jba-lt",
                "benefits_team",
                "Leistungsteam U25",
                "Benefits team under 25",
                "Team für Ihr Geld",
                5,
            ),
        ],
        "windows": [
            *[("ez", day, "08:00", "12:00", 4, False) for day in range(5)],
            ("ez", 2, "14:00", "16:00", 2, False),
            ("ez", 2, "16:00", "18:00", 2, True),
            *[("lt", day, "08:30", "12:30", 5, False) for day in (0, 1, 3, 4)],
            ("lt", 2, "13:00", "16:00", 5, False),
            ("lt", 2, "16:00", "18:00", 2, True),
        ],
        "offers": {
            # the JBA entrance zone: the mandatory JBA concern, and what young customers come for
            "arbeitsaufnahme": ("ez", 10, BOTH),
            "neuantrag": ("ez", 45, IN_PERSON),
            "veraenderung": ("ez", 15, BOTH),
            "bewerbungsunterlagen": ("ez", 45, IN_PERSON),
            "berufliche-situation": ("ez", 30, BOTH),
            "qualifizierung": ("ez", 45, BOTH),
            "schwangerschaft": ("ez", 10, BOTH),
            "kontaktdaten": ("ez", 10, BOTH),
            # the benefits team for under-25s: every mandatory benefits concern
            "leistungsbezug": ("lt", 20, BOTH),
            "umzugswunsch": ("lt", 30, BOTH),
            "bearbeitungsstand": ("lt", 10, BOTH),
            "einkommen": ("lt", 20, BOTH),
            "bescheid": ("lt", 20, BOTH),
            "rueckforderung": ("lt", 30, BOTH),
            "bg-zuzug-auszug": ("lt", 30, BOTH),
            "unterkunft": ("lt", 30, BOTH),
            "notlage": ("lt", 20, BOTH),
            "energiesperre": ("lt", 30, BOTH),
            "p-konto": ("lt", 15, IN_PERSON),
        },
        "lead_time": {"min_minutes": 0, "max_days": 56},
        "month_change_block": None,
        "closures": CHRISTMAS_CLOSURES,
    },
]

# --- other jobcenters (R3) --------------------------------------------------------------------------

OTHER_JOBCENTERS: list[dict[str, Any]] = [
    {
        "id": "bremerhaven",
        "name": "Jobcenter Bremerhaven",
        # Source: bremerhavennews24.de (11/2021): new building Grimsbystraße 1a, "Beratungs-Hotline
        # 0471 1428-450"; not checked with the jobcenter.
        "hotline": "0471 1428-450",
        "address": "Grimsbystraße 1a, Bremerhaven",
        "verified": False,
        "postcodes": {
            p: "Bremerhaven" for p in ("27568", "27570", "27572", "27574", "27576", "27578", "27580")
        },
        # Streets only Bremerhaven has, for an address typed without its postcode.
        "streets": ["Grimsbystraße", "Hinrich-Schmalfeld-Straße", "Columbusstraße"],
    },
    {
        "id": "delmenhorst",
        "name": "Jobcenter Delmenhorst",
        "hotline": "040 66969-101",  # DEMO DATA (film and television range)
        "address": "Delmenhorst",
        "verified": False,
        "postcodes": {p: "Delmenhorst" for p in ("27749", "27751", "27753", "27755")},
        "streets": [],
    },
    {
        "id": "lk-osterholz",
        "name": "Jobcenter Landkreis Osterholz",
        "hotline": "040 66969-102",  # DEMO DATA
        "address": "Osterholz-Scharmbeck",
        "verified": False,
        "postcodes": {
            "28865": "Lilienthal",
            "27721": "Ritterhude",
            "28790": "Schwanewede",
            "27711": "Osterholz-Scharmbeck",
            "28879": "Grasberg",
            "27726": "Worpswede",
        },
        "streets": [],
    },
    {
        "id": "lk-diepholz",
        "name": "Jobcenter Landkreis Diepholz",
        "hotline": "040 66969-103",  # DEMO DATA
        "address": "Diepholz",
        "verified": False,
        "postcodes": {"28816": "Stuhr", "28844": "Weyhe", "28857": "Syke"},
        "streets": [],
    },
    {
        "id": "lk-verden",
        "name": "Jobcenter Landkreis Verden",
        "hotline": "040 66969-104",  # DEMO DATA
        "address": "Verden (Aller)",
        "verified": False,
        "postcodes": {"28832": "Achim", "28876": "Oyten"},
        "streets": [],
    },
    {
        "id": "lk-oldenburg",
        "name": "Jobcenter Landkreis Oldenburg",
        "hotline": "040 66969-105",  # DEMO DATA
        "address": "Wildeshausen",
        "verified": False,
        "postcodes": {"27777": "Ganderkesee"},
        "streets": [],
    },
    {
        "id": "wesermarsch",
        "name": "Jobcenter Wesermarsch",
        "hotline": "040 66969-106",  # DEMO DATA
        "address": "Brake (Unterweser)",
        "verified": False,
        "postcodes": {"27809": "Lemwerder", "27804": "Berne"},
        "streets": [],
    },
]

# --- the internal allow-list (R6), DEMO DATA --------------------------------------------------------

ALLOW_LIST: list[dict[str, str]] = [
    {"entry": "servicecenter@jobcenter-bremen.de", "note": "Service-Center (Demo)"},
    {"entry": "terminvergabe@jobcenter-bremen.de", "note": "Jobcenter Bremen, interne Terminvergabe (Demo)"},
]
