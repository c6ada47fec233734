"""Demo data: the responsibility finder's street table for the city of Bremen (R3).

Every Stadtteil of the city of Bremen (the 22 Stadtteile of the five Stadtbezirke and the Blockland) with
real street names. DEMO DATA, NOT VERIFIED: which Geschäftsstelle serves which Stadtteil (here: by
Stadtbezirk, the Häfen and the Blockland with West, the Östliche Vorstadt with Mitte), the postcodes
(best effort) and the house-number split of the Stader Straße are assumptions, not Jobcenter Bremen's
real responsibility table; the street names are real streets of Bremen.

A street is a name, or `(name, postcode)`, or `(name, postcode, first_number, last_number)` for the part
of a street that is split between Stadtteile. The district's postcode applies when none is given.
"""

from __future__ import annotations

StreetSpec = str | tuple[str, str] | tuple[str, str, int | None, int | None]

# Stadtteil -> (Geschäftsstelle, default postcode, streets)
DISTRICTS: dict[str, tuple[str, str, list[StreetSpec]]] = {
    # --- Stadtbezirk Mitte --------------------------------------------------------------------------
    "Mitte": (
        "mitte",
        "28195",
        [
            "Am Markt",
            "Obernstraße",
            "Sögestraße",
            "Böttcherstraße",
            "Langenstraße",
            "Martinistraße",
            "Am Wall",
            "Bürgermeister-Smidt-Straße",
            "Faulenstraße",
            "Schlachte",
            "Domshof",
            "Bahnhofsplatz",
            "Breitenweg",
            "Herdentorsteinweg",
            "Doventorsteinweg",
            "Falkenstraße",
            "Rembertiring",
            "Knochenhauerstraße",
            "Hutfilterstraße",
            "Wachtstraße",
            "Tiefer",
            "Contrescarpe",
            "An der Weide",
            "Am Wandrahm",
            ("Ostertorsteinweg", "28203"),
            ("Bleicherstraße", "28203"),
            ("Goetheplatz", "28203"),
        ],
    ),
    "Häfen": (
        "west",
        "28217",
        [
            "Konsul-Smidt-Straße",
            "Am Winterhafen",
            "Überseetor",
            "Am Speicher XI",
            "Hansator",
            "Auf der Muggenburg",
            "Marcuskaje",
        ],
    ),
    # --- Stadtbezirk Süd ----------------------------------------------------------------------------
    "Neustadt": (
        "sued",
        "28199",
        [
            "Friedrich-Ebert-Straße",
            "Pappelstraße",
            "Langemarckstraße",
            ("Kornstraße", "28201"),
            ("Buntentorsteinweg", "28201"),
            "Neuenlander Straße",
            "Am Deich",
            "Westerstraße",
            "Lahnstraße",
            ("Gastfeldstraße", "28201"),
            "Delmestraße",
            "Grünenstraße",
            "Neustadtswall",
        ],
    ),
    "Obervieland": (
        "sued",
        "28277",
        [
            "Kattenturmer Heerstraße",
            "Arsterdamm",
            ("Habenhauser Landstraße", "28279"),
            ("Arster Heerstraße", "28279"),
            ("Alfred-Faust-Straße", "28279"),
            "Senator-Weßling-Straße",
            ("Habenhauser Brückenstraße", "28279"),
            "Kattenescher Weg",
        ],
    ),
    "Huchting": (
        "sued",
        "28259",
        [
            "Kirchhuchtinger Landstraße",
            "Heinrich-Plett-Allee",
            "Delfter Straße",
            "Amersfoorter Straße",
            "Huchtinger Heerstraße",
            "Nimweger Straße",
            "Varreler Landstraße",
            "Alter Dorfweg",
        ],
    ),
    "Woltmershausen": (
        "sued",
        "28197",
        [
            "Woltmershauser Straße",
            "Rablinghauser Landstraße",
            "Dötlinger Straße",
            "Butjadinger Straße",
            "Am Lankenauer Höft",
            "Simon-Bolivar-Straße",
        ],
    ),
    "Seehausen": ("sued", "28197", ["Seehauser Landstraße", "Hasenbürener Landstraße"]),
    "Strom": ("sued", "28197", ["Stromer Landstraße", "Reedeich"]),
    # --- Stadtbezirk Ost ----------------------------------------------------------------------------
    "Östliche Vorstadt": (
        "mitte",
        "28203",
        [
            "Vor dem Steintor",
            "Sielwall",
            "Am Dobben",
            "Humboldtstraße",
            "Lübecker Straße",
            "Fehrfeld",
            "Körnerwall",
            "Feldstraße",
            "Osterdeich",
            "Bismarckstraße",
            "Friesenstraße",
            "Auf den Häfen",
            "Eduard-Grunow-Straße",
            ("Am Hulsberg", "28205"),
            ("St.-Jürgen-Straße", "28205"),
            ("Hamburger Straße", "28205"),
            ("Franz-Böhmert-Straße", "28205"),
            # The Stader Straße runs from the Östliche Vorstadt into Hastedt (Hemelingen).
            ("Stader Straße", "28205", 1, 69),
        ],
    ),
    "Schwachhausen": (
        "ost",
        "28209",
        [
            ("Schwachhauser Heerstraße", "28209"),
            "Parkallee",
            "Hollerallee",
            "Wachmannstraße",
            ("Kurfürstenallee", "28211"),
            ("H.-H.-Meier-Allee", "28213"),
            "Hermann-Böse-Straße",
            "Georg-Gröning-Straße",
            ("Emmastraße", "28213"),
            ("Kirchbachstraße", "28211"),
            ("Wätjenstraße", "28213"),
            "Lüder-von-Bentheim-Straße",
            ("Busestraße", "28213"),
        ],
    ),
    "Vahr": (
        "ost",
        "28329",
        [
            ("Kurt-Schumacher-Allee", "28327"),
            "Richard-Boljahn-Allee",
            ("Berliner Freiheit", "28327"),
            "Vahrer Straße",
            "August-Bebel-Allee",
            "Eislebener Straße",
            "In der Vahr",
            "Adam-Stegerwald-Straße",
            ("Karl-Kautsky-Straße", "28327"),
        ],
    ),
    "Horn-Lehe": (
        "ost",
        "28359",
        [
            "Leher Heerstraße",
            "Horner Heerstraße",
            ("Lilienthaler Heerstraße", "28357"),
            "Universitätsallee",
            "Bibliothekstraße",
            "Achterstraße",
            ("Lehester Deich", "28357"),
            "Berckstraße",
            "Vorkampsweg",
            "Marcusallee",
            "Riensberger Straße",
            "Robert-Hooke-Straße",
        ],
    ),
    "Borgfeld": (
        "ost",
        "28357",
        [
            "Borgfelder Heerstraße",
            "Katrepeler Landstraße",
            "Hamfhofsweg",
            "Warfer Landstraße",
            "Borgfelder Landstraße",
            "Daniel-Jacobs-Allee",
        ],
    ),
    "Oberneuland": (
        "ost",
        "28355",
        [
            "Oberneulander Heerstraße",
            "Oberneulander Landstraße",
            "Rockwinkeler Landstraße",
            "Rockwinkeler Heerstraße",
            "Mühlenfeldstraße",
            "Hohenkampsweg",
            "Apfelallee",
            "Franz-Schütte-Allee",
            "Vinnenweg",
        ],
    ),
    "Osterholz": (
        "ost",
        "28325",
        [
            "Osterholzer Heerstraße",
            "Otto-Brenner-Allee",
            "Walliser Straße",
            "Neuwieder Straße",
            "Schweizer Straße",
            "Ludwigshafener Straße",
            "Koblenzer Straße",
            "Züricher Straße",
            "Osterholzer Landstraße",
            "Düsseldorfer Straße",
            "Ehlersdamm",
        ],
    ),
    "Hemelingen": (
        "ost",
        "28309",
        [
            "Hemelinger Heerstraße",
            "Hemelinger Bahnhofstraße",
            ("Hastedter Heerstraße", "28207"),
            ("Stresemannstraße", "28207"),
            "Sebaldsbrücker Heerstraße",
            ("Arberger Heerstraße", "28307"),
            ("Mahndorfer Heerstraße", "28307"),
            "Diedrich-Wilkens-Straße",
            "Christernstraße",
            ("Bennigsenstraße", "28207"),
            ("Hastedter Osterdeich", "28207"),
            ("Stader Straße", "28205", 70, None),
        ],
    ),
    # --- Stadtbezirk West ---------------------------------------------------------------------------
    "Findorff": (
        "west",
        "28215",
        [
            "Findorffstraße",
            "Hemmstraße",
            "Admiralstraße",
            "Münchener Straße",
            "Plantage",
            "Neukirchstraße",
            "Eickedorfer Straße",
            "Regensburger Straße",
            "Augsburger Straße",
            "Nürnberger Straße",
            "Theodor-Heuss-Allee",
        ],
    ),
    "Walle": (
        "west",
        "28217",
        [
            ("Waller Heerstraße", "28219"),
            "Nordstraße",
            "Utbremer Straße",
            ("Waller Ring", "28219"),
            "Helgolander Straße",
            "Steffensweg",
            "Bremerhavener Straße",
            "Elisabethstraße",
            ("Osterfeuerberger Ring", "28219"),
            ("Vegesacker Straße", "28219"),
            "Wartburgstraße",
            "Hafenstraße",
            ("Lange Reihe", "28219"),
        ],
    ),
    "Gröpelingen": (
        "west",
        "28237",
        [
            "Gröpelinger Heerstraße",
            "Lindenhofstraße",
            "Liegnitzstraße",
            ("Oslebshauser Heerstraße", "28239"),
            "Bromberger Straße",
            "Morgenlandstraße",
            "Pastorenweg",
            "Stapelfeldtstraße",
            "Halmerweg",
            "Seewenjestraße",
            ("Grasberger Straße", "28239"),
        ],
    ),
    "Blockland": (
        "west",
        "28357",
        ["Niederblockland", "Oberblockland", "Wasserhorst", "Dammsiel", "Kuhsiel"],
    ),
    # --- Stadtbezirk Nord ---------------------------------------------------------------------------
    "Burglesum": (
        "nord",
        "28717",
        [
            "Lesumer Heerstraße",
            "Bremerhavener Heerstraße",
            "Hindenburgstraße",
            ("Burger Heerstraße", "28719"),
            ("Grambker Heerstraße", "28719"),
            ("Stader Landstraße", "28719"),
            ("Ritterhuder Heerstraße", "28719"),
            ("Lesumbroker Landstraße", "28719"),
        ],
    ),
    "Vegesack": (
        "nord",
        "28757",
        [
            "Gerhard-Rohlfs-Straße",
            "Breite Straße",
            ("Lindenstraße", "28755"),
            "Hermann-Fortmann-Straße",
            "Weserstraße",
            ("Zum Alten Speicher", "28759"),
            "Kirchheide",
            "Aumunder Heerstraße",
            ("Friedrich-Humbert-Straße", "28759"),
            ("Hammersbecker Straße", "28755"),
            "Uhthoffstraße",
            "Sagerstraße",
        ],
    ),
    "Blumenthal": (
        "nord",
        "28779",
        [
            "Landrat-Christians-Straße",
            "Mühlenstraße",
            "Lüssumer Straße",
            "Kapitän-Dallmann-Straße",
            ("Farger Straße", "28777"),
            ("Rekumer Straße", "28777"),
            "Turnerstraße",
            "Lüder-Clüver-Straße",
            "George-Albrecht-Straße",
            "Bahrsplate",
        ],
    ),
}


def street_rows() -> list[dict[str, object]]:
    """The table's rows: one per street (or part of a street)."""
    rows: list[dict[str, object]] = []
    for district, (location_id, default_postcode, streets) in DISTRICTS.items():
        for spec in streets:
            first: int | None = None
            last: int | None = None
            if isinstance(spec, str):
                name, postcode = spec, default_postcode
            elif len(spec) == 2:
                name, postcode = spec[0], spec[1]
            else:
                name, postcode, first, last = spec  # the four-part form
            rows.append(
                {
                    "street": name,
                    "postcode": postcode,
                    "first_number": first,
                    "last_number": last,
                    "parity": "all",
                    "district": district,
                    "location_id": location_id,
                    "other_jobcenter_id": None,
                }
            )
    return rows
