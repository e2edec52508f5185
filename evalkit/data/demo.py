"""A deterministic, synthetic, multilingual product catalog with shopper queries and graded judgments.

:func:`load_demo` is what ``evalkit`` runs with no arguments: items drawn from structured products
and titled in their listing language (en/de/fr/es/it), queries of 1-6 words derived from the same
structure (some cross-lingual, Zipf-like frequency), and judgments from the structure alone, never
from a model: 3 = product type and every named attribute match, 2 = right type, an attribute
differs, 1 = same category, 0 = a few hard negatives sharing a named attribute.  Relevance does
not depend on the listing language; each query's judged pool is capped.  See docs/tutorial.md.

>>> data = load_demo(n_items=300, n_queries=40, seed=1)
>>> len(data.catalog), len(data.queries), data.synthetic
(300, 40, True)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np

from evalkit.data.digest import fingerprint_data
from evalkit.data.schema import Catalog, EvalData, Judgments, Queries
from evalkit.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["SUPPORTED_LANGUAGES", "load_demo"]

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "it")
MAX_QUERY_WORDS = 6
INTENTS: tuple[str, ...] = ("broad", "brand", "attribute", "specific")
_ROMANCE = ("fr", "es", "it")
# The query-able attributes' columns, and the order they are dropped from a too long query.
_BRAND, _COLOUR, _MATERIAL, _SPEC, _FEATURE = range(5)
_DROP_ORDER = (_FEATURE, _MATERIAL, _SPEC, _COLOUR, _BRAND)
_SHARED = [_BRAND, _COLOUR, _MATERIAL, _FEATURE]  # comparable across product types
_RATES = ("cross_lingual_rate", "feature_rate", "typo_rate")

# Vocabulary. Nouns: (singular, plural, gender); gender is de m/f/n, fr/es/it m/f, or mp/fp for
# nouns used only in the plural. Romance adjectives: (m, f, m plural, f plural).

# fmt: off
_CATEGORY_NAMES: Mapping[str, Mapping[str, str]] = {
    "footwear": {"en": "footwear", "de": "Schuhe", "fr": "chaussures", "es": "calzado", "it": "calzature"},
    "clothing": {"en": "clothing", "de": "Bekleidung", "fr": "vêtements", "es": "ropa", "it": "abbigliamento"},
    "electronics": {"en": "electronics", "de": "Elektronik", "fr": "électronique", "es": "electrónica", "it": "elettronica"},
    "kitchen": {"en": "kitchen", "de": "Küche", "fr": "cuisine", "es": "cocina", "it": "cucina"},
    "furniture": {"en": "furniture", "de": "Möbel", "fr": "mobilier", "es": "muebles", "it": "arredamento"},
    "sports": {"en": "sports", "de": "Sport", "fr": "sport", "es": "deportes", "it": "sport"},
    "bags": {"en": "bags and luggage", "de": "Taschen und Koffer", "fr": "bagagerie", "es": "bolsos y maletas", "it": "borse e valigie"},
    "personal_care": {"en": "personal care", "de": "Körperpflege", "fr": "soin personnel", "es": "cuidado personal", "it": "cura della persona"},
}

_COLOURS: Mapping[str, Mapping[str, Any]] = {
    # de: (predicative, stem for attributive endings or None if invariable)
    "black": {"en": "black", "de": ("schwarz", "schwarz"), "fr": ("noir", "noire", "noirs", "noires"), "es": ("negro", "negra", "negros", "negras"), "it": ("nero", "nera", "neri", "nere")},
    "white": {"en": "white", "de": ("weiß", "weiß"), "fr": ("blanc", "blanche", "blancs", "blanches"), "es": ("blanco", "blanca", "blancos", "blancas"), "it": ("bianco", "bianca", "bianchi", "bianche")},
    "red": {"en": "red", "de": ("rot", "rot"), "fr": ("rouge", "rouge", "rouges", "rouges"), "es": ("rojo", "roja", "rojos", "rojas"), "it": ("rosso", "rossa", "rossi", "rosse")},
    "blue": {"en": "blue", "de": ("blau", "blau"), "fr": ("bleu", "bleue", "bleus", "bleues"), "es": ("azul", "azul", "azules", "azules"), "it": ("blu", "blu", "blu", "blu")},
    "green": {"en": "green", "de": ("grün", "grün"), "fr": ("vert", "verte", "verts", "vertes"), "es": ("verde", "verde", "verdes", "verdes"), "it": ("verde", "verde", "verdi", "verdi")},
    "grey": {"en": "grey", "de": ("grau", "grau"), "fr": ("gris", "grise", "gris", "grises"), "es": ("gris", "gris", "grises", "grises"), "it": ("grigio", "grigia", "grigi", "grigie")},
    "brown": {"en": "brown", "de": ("braun", "braun"), "fr": ("marron", "marron", "marron", "marron"), "es": ("marrón", "marrón", "marrones", "marrones"), "it": ("marrone", "marrone", "marroni", "marroni")},
    "pink": {"en": "pink", "de": ("rosa", None), "fr": ("rose", "rose", "roses", "roses"), "es": ("rosa", "rosa", "rosa", "rosa"), "it": ("rosa", "rosa", "rosa", "rosa")},
    "beige": {"en": "beige", "de": ("beige", None), "fr": ("beige", "beige", "beiges", "beiges"), "es": ("beige", "beige", "beige", "beige"), "it": ("beige", "beige", "beige", "beige")},
    "yellow": {"en": "yellow", "de": ("gelb", "gelb"), "fr": ("jaune", "jaune", "jaunes", "jaunes"), "es": ("amarillo", "amarilla", "amarillos", "amarillas"), "it": ("giallo", "gialla", "gialli", "gialle")},
    "silver": {"en": "silver", "de": ("silber", "silbern"), "fr": ("argenté", "argentée", "argentés", "argentées"), "es": ("plateado", "plateada", "plateados", "plateadas"), "it": ("argento", "argento", "argento", "argento")},
}

_PALETTES: Mapping[str, tuple[str, ...]] = {
    "apparel": ("black", "white", "red", "blue", "green", "grey", "brown", "pink", "beige", "yellow"),
    "tech": ("black", "white", "grey", "silver", "blue"),
    "bright": ("black", "white", "grey", "blue", "red", "green", "pink", "yellow"),
    "home": ("black", "white", "grey", "beige", "brown", "green", "blue"),
    "kitchen": ("black", "white", "silver", "red", "grey", "blue"),
}

# Materials: en attributive word; other languages (title phrase, query word).
_MATERIALS: Mapping[str, Mapping[str, Any]] = {
    "textile": {"en": "textile", "de": ("aus Textil", "textil"), "fr": ("en textile", "textile"), "es": ("de tejido", "tejido"), "it": ("in tessuto", "tessuto")},
    "synthetic": {"en": "synthetic", "de": ("aus Synthetik", "synthetik"), "fr": ("en synthétique", "synthétique"), "es": ("de material sintético", "sintético"), "it": ("in materiale sintetico", "sintetico")},
    "leather": {"en": "leather", "de": ("aus Leder", "leder"), "fr": ("en cuir", "cuir"), "es": ("de piel", "piel"), "it": ("in pelle", "pelle")},
    "suede": {"en": "suede", "de": ("aus Wildleder", "wildleder"), "fr": ("en daim", "daim"), "es": ("de ante", "ante"), "it": ("in camoscio", "camoscio")},
    "canvas": {"en": "canvas", "de": ("aus Canvas", "canvas"), "fr": ("en toile", "toile"), "es": ("de lona", "lona"), "it": ("in tela", "tela")},
    "cork": {"en": "cork", "de": ("aus Kork", "kork"), "fr": ("en liège", "liège"), "es": ("de corcho", "corcho"), "it": ("in sughero", "sughero")},
    "rubber": {"en": "rubber", "de": ("aus Gummi", "gummi"), "fr": ("en caoutchouc", "caoutchouc"), "es": ("de caucho", "caucho"), "it": ("in gomma", "gomma")},
    "wool": {"en": "wool", "de": ("aus Wolle", "wolle"), "fr": ("en laine", "laine"), "es": ("de lana", "lana"), "it": ("in lana", "lana")},
    "felt": {"en": "felt", "de": ("aus Filz", "filz"), "fr": ("en feutre", "feutre"), "es": ("de fieltro", "fieltro"), "it": ("in feltro", "feltro")},
    "cotton": {"en": "cotton", "de": ("aus Baumwolle", "baumwolle"), "fr": ("en coton", "coton"), "es": ("de algodón", "algodón"), "it": ("in cotone", "cotone")},
    "linen": {"en": "linen", "de": ("aus Leinen", "leinen"), "fr": ("en lin", "lin"), "es": ("de lino", "lino"), "it": ("in lino", "lino")},
    "polyester": {"en": "polyester", "de": ("aus Polyester", "polyester"), "fr": ("en polyester", "polyester"), "es": ("de poliéster", "poliéster"), "it": ("in poliestere", "poliestere")},
    "nylon": {"en": "nylon", "de": ("aus Nylon", "nylon"), "fr": ("en nylon", "nylon"), "es": ("de nailon", "nailon"), "it": ("in nylon", "nylon")},
    "fleece": {"en": "fleece", "de": ("aus Fleece", "fleece"), "fr": ("en polaire", "polaire"), "es": ("de forro polar", "polar"), "it": ("in pile", "pile")},
    "down": {"en": "down", "de": ("mit Daunenfüllung", "daunen"), "fr": ("en duvet", "duvet"), "es": ("de plumón", "plumón"), "it": ("in piuma d'oca", "piuma")},
    "denim": {"en": "denim", "de": ("aus Denim", "denim"), "fr": ("en denim", "denim"), "es": ("de denim", "denim"), "it": ("in denim", "denim")},
    "plastic": {"en": "plastic", "de": ("aus Kunststoff", "kunststoff"), "fr": ("en plastique", "plastique"), "es": ("de plástico", "plástico"), "it": ("in plastica", "plastica")},
    "aluminium": {"en": "aluminium", "de": ("aus Aluminium", "aluminium"), "fr": ("en aluminium", "aluminium"), "es": ("de aluminio", "aluminio"), "it": ("in alluminio", "alluminio")},
    "glass": {"en": "glass", "de": ("aus Glas", "glas"), "fr": ("en verre", "verre"), "es": ("de vidrio", "vidrio"), "it": ("in vetro", "vetro")},
    "stainless_steel": {"en": "stainless steel", "de": ("aus Edelstahl", "edelstahl"), "fr": ("en acier inoxydable", "inox"), "es": ("de acero inoxidable", "acero inoxidable"), "it": ("in acciaio inox", "acciaio inox")},
    "cast_iron": {"en": "cast iron", "de": ("aus Gusseisen", "gusseisen"), "fr": ("en fonte", "fonte"), "es": ("de hierro fundido", "hierro fundido"), "it": ("in ghisa", "ghisa")},
    "ceramic": {"en": "ceramic", "de": ("aus Keramik", "keramik"), "fr": ("en céramique", "céramique"), "es": ("de cerámica", "cerámica"), "it": ("in ceramica", "ceramica")},
    "wood": {"en": "wooden", "de": ("aus Holz", "holz"), "fr": ("en bois", "bois"), "es": ("de madera", "madera"), "it": ("in legno", "legno")},
    "oak": {"en": "oak", "de": ("aus Eiche", "eiche"), "fr": ("en chêne", "chêne"), "es": ("de roble", "roble"), "it": ("in rovere", "rovere")},
    "metal": {"en": "metal", "de": ("aus Metall", "metall"), "fr": ("en métal", "métal"), "es": ("de metal", "metal"), "it": ("in metallo", "metallo")},
    "fabric": {"en": "fabric", "de": ("aus Stoff", "stoff"), "fr": ("en tissu", "tissu"), "es": ("de tela", "tela"), "it": ("in tessuto", "tessuto")},
    "velvet": {"en": "velvet", "de": ("aus Samt", "samt"), "fr": ("en velours", "velours"), "es": ("de terciopelo", "terciopelo"), "it": ("in velluto", "velluto")},
    "carbon": {"en": "carbon", "de": ("aus Carbon", "carbon"), "fr": ("en carbone", "carbone"), "es": ("de carbono", "carbono"), "it": ("in carbonio", "carbonio")},
}

# Features: en attributive, de predicative, fr/es/it (m, f, m plural, f plural).
_FEATURES: Mapping[str, Mapping[str, Any]] = {
    "waterproof": {"en": "waterproof", "de": "wasserdicht", "fr": ("imperméable", "imperméable", "imperméables", "imperméables"), "es": ("impermeable", "impermeable", "impermeables", "impermeables"), "it": ("impermeabile", "impermeabile", "impermeabili", "impermeabili")},
    "lightweight": {"en": "lightweight", "de": "leicht", "fr": ("léger", "légère", "légers", "légères"), "es": ("ligero", "ligera", "ligeros", "ligeras"), "it": ("leggero", "leggera", "leggeri", "leggere")},
    "wireless": {"en": "wireless", "de": "kabellos", "fr": ("sans fil",) * 4, "es": ("inalámbrico", "inalámbrica", "inalámbricos", "inalámbricas"), "it": ("senza fili",) * 4},
    "noise_cancelling": {"en": "noise-cancelling", "de": "mit Geräuschunterdrückung", "fr": ("à réduction de bruit",) * 4, "es": ("con cancelación de ruido",) * 4, "it": ("con cancellazione del rumore",) * 4},
    "non_stick": {"en": "non-stick", "de": "antihaftbeschichtet", "fr": ("antiadhésif", "antiadhésive", "antiadhésifs", "antiadhésives"), "es": ("antiadherente", "antiadherente", "antiadherentes", "antiadherentes"), "it": ("antiaderente", "antiaderente", "antiaderenti", "antiaderenti")},
    "induction": {"en": "induction-ready", "de": "induktionsgeeignet", "fr": ("compatible induction", "compatible induction", "compatibles induction", "compatibles induction"), "es": ("para inducción",) * 4, "it": ("per induzione",) * 4},
    "foldable": {"en": "foldable", "de": "faltbar", "fr": ("pliable", "pliable", "pliables", "pliables"), "es": ("plegable", "plegable", "plegables", "plegables"), "it": ("pieghevole", "pieghevole", "pieghevoli", "pieghevoli")},
    "ergonomic": {"en": "ergonomic", "de": "ergonomisch", "fr": ("ergonomique", "ergonomique", "ergonomiques", "ergonomiques"), "es": ("ergonómico", "ergonómica", "ergonómicos", "ergonómicas"), "it": ("ergonomico", "ergonomica", "ergonomici", "ergonomiche")},
    "height_adjustable": {"en": "height-adjustable", "de": "höhenverstellbar", "fr": ("réglable en hauteur", "réglable en hauteur", "réglables en hauteur", "réglables en hauteur"), "es": ("regulable en altura", "regulable en altura", "regulables en altura", "regulables en altura"), "it": ("regolabile in altezza", "regolabile in altezza", "regolabili in altezza", "regolabili in altezza")},
    "rechargeable": {"en": "rechargeable", "de": "wiederaufladbar", "fr": ("rechargeable", "rechargeable", "rechargeables", "rechargeables"), "es": ("recargable", "recargable", "recargables", "recargables"), "it": ("ricaricabile", "ricaricabile", "ricaricabili", "ricaricabili")},
    "slim_fit": {"en": "slim-fit", "de": "Slim Fit", "fr": ("coupe slim",) * 4, "es": ("slim fit",) * 4, "it": ("slim fit",) * 4},
    "hooded": {"en": "hooded", "de": "mit Kapuze", "fr": ("à capuche",) * 4, "es": ("con capucha",) * 4, "it": ("con cappuccio",) * 4},
    "non_slip": {"en": "non-slip", "de": "rutschfest", "fr": ("antidérapant", "antidérapante", "antidérapants", "antidérapantes"), "es": ("antideslizante", "antideslizante", "antideslizantes", "antideslizantes"), "it": ("antiscivolo",) * 4},
    "insulated": {"en": "insulated", "de": "isoliert", "fr": ("isotherme", "isotherme", "isothermes", "isothermes"), "es": ("térmico", "térmica", "térmicos", "térmicas"), "it": ("termico", "termica", "termici", "termiche")},
    "programmable": {"en": "programmable", "de": "programmierbar", "fr": ("programmable", "programmable", "programmables", "programmables"), "es": ("programable", "programable", "programables", "programables"), "it": ("programmabile", "programmabile", "programmabili", "programmabili")},
    "dishwasher_safe": {"en": "dishwasher-safe", "de": "spülmaschinenfest", "fr": ("compatible lave-vaisselle", "compatible lave-vaisselle", "compatibles lave-vaisselle", "compatibles lave-vaisselle"), "es": ("apto para lavavajillas", "apta para lavavajillas", "aptos para lavavajillas", "aptas para lavavajillas"), "it": ("lavabile in lavastoviglie", "lavabile in lavastoviglie", "lavabili in lavastoviglie", "lavabili in lavastoviglie")},
    "leakproof": {"en": "leak-proof", "de": "auslaufsicher", "fr": ("étanche", "étanche", "étanches", "étanches"), "es": ("antigoteo",) * 4, "it": ("antigoccia",) * 4},
    "dimmable": {"en": "dimmable", "de": "dimmbar", "fr": ("à intensité variable",) * 4, "es": ("con regulador de intensidad",) * 4, "it": ("dimmerabile", "dimmerabile", "dimmerabili", "dimmerabili")},
    "4k": {"en": "4K", "de": "4K", "fr": ("4K",) * 4, "es": ("4K",) * 4, "it": ("4K",) * 4},
    "oled": {"en": "OLED", "de": "OLED", "fr": ("OLED",) * 4, "es": ("OLED",) * 4, "it": ("OLED",) * 4},
}

# Size / capacity kinds: title form per language ("{v}" is the localised value); queries use
# the lower-cased compact form in _SPEC_QUERY.
_SPEC_TITLE: Mapping[str, Mapping[str, str]] = {
    "shoe_size": {"en": "size {v}", "de": "Größe {v}", "fr": "pointure {v}", "es": "talla {v}", "it": "numero {v}"},
    "clothing_size": {"en": "size {v}", "de": "Größe {v}", "fr": "taille {v}", "es": "talla {v}", "it": "taglia {v}"},
    "screen_in": {"en": "{v} inch", "de": "{v} Zoll", "fr": "{v} pouces", "es": "{v} pulgadas", "it": "{v} pollici"},
    "storage_gb": {"en": "{v} GB", "de": "{v} GB", "fr": "{v} Go", "es": "{v} GB", "it": "{v} GB"},
    "capacity_l": {"en": "{v} L", "de": "{v} Liter", "fr": "{v} L", "es": "{v} L", "it": "{v} L"},
    "cm": {"en": "{v} cm", "de": "{v} cm", "fr": "{v} cm", "es": "{v} cm", "it": "{v} cm"},
    "power_w": {"en": "{v} W", "de": "{v} Watt", "fr": "{v} W", "es": "{v} W", "it": "{v} W"},
    "seats": {"en": "{v}-seater", "de": "{v}-Sitzer", "fr": "{v} places", "es": "{v} plazas", "it": "{v} posti"},
    "thickness_mm": {"en": "{v} mm", "de": "{v} mm", "fr": "{v} mm", "es": "{v} mm", "it": "{v} mm"},
    "weight_g": {"en": "{v} g", "de": "{v} g", "fr": "{v} g", "es": "{v} g", "it": "{v} g"},
    "mass_kg": {"en": "{v} kg", "de": "{v} kg", "fr": "{v} kg", "es": "{v} kg", "it": "{v} kg"},
}
_SPEC_QUERY: Mapping[str, Mapping[str, str]] = {
    "shoe_size": dict.fromkeys(SUPPORTED_LANGUAGES, "{v}"),
    "clothing_size": {"en": "size {v}", "de": "gr {v}", "fr": "taille {v}", "es": "talla {v}", "it": "taglia {v}"},
    "screen_in": {"en": "{v} inch", "de": "{v} zoll", "fr": "{v} pouces", "es": "{v} pulgadas", "it": "{v} pollici"},
    "storage_gb": {"en": "{v}gb", "de": "{v}gb", "fr": "{v}go", "es": "{v}gb", "it": "{v}gb"},
    "capacity_l": {"en": "{v}l", "de": "{v} liter", "fr": "{v}l", "es": "{v}l", "it": "{v}l"},
    "cm": dict.fromkeys(SUPPORTED_LANGUAGES, "{v}cm"),
    "power_w": {"en": "{v}w", "de": "{v} watt", "fr": "{v}w", "es": "{v}w", "it": "{v}w"},
    "seats": {"en": "{v} seater", "de": "{v}-sitzer", "fr": "{v} places", "es": "{v} plazas", "it": "{v} posti"},
    "thickness_mm": dict.fromkeys(SUPPORTED_LANGUAGES, "{v}mm"),
    "weight_g": dict.fromkeys(SUPPORTED_LANGUAGES, "{v}g"),
    "mass_kg": dict.fromkeys(SUPPORTED_LANGUAGES, "{v}kg"),
}


@dataclass(frozen=True)
class _ProductType:
    """A product type: its category, names per language, and the attribute values it takes."""

    key: str
    category: str
    names: Mapping[str, tuple[str, str, str]]  # lang -> (singular, plural, gender)
    materials: tuple[str, ...]
    features: tuple[str, ...]
    palette: str
    spec_kind: str | None
    spec_values: tuple[str, ...]
    brands: tuple[str, ...]


def _t(key, category, en, de, fr, es, it, materials, features, palette, spec, values, brands):
    return _ProductType(
        key, category, {"en": en, "de": de, "fr": fr, "es": es, "it": it},
        tuple(materials), tuple(features), palette, spec, tuple(values), tuple(brands),
    )


_SHOE = tuple(str(s) for s in range(36, 47))
_CLOTHES = ("XS", "S", "M", "L", "XL", "XXL")

_PRODUCT_TYPES: tuple[_ProductType, ...] = (
    _t("running_shoe", "footwear", ("running shoe", "running shoes", ""), ("Laufschuh", "Laufschuhe", "m"), ("chaussure de course", "chaussures de course", "f"), ("zapatilla de running", "zapatillas de running", "f"), ("scarpa da corsa", "scarpe da corsa", "f"),
       ["textile", "synthetic", "leather"], ["waterproof", "lightweight"], "apparel", "shoe_size", _SHOE, ["Nike", "Adidas", "Asics", "New Balance", "Puma", "Brooks"]),
    _t("hiking_boot", "footwear", ("hiking boot", "hiking boots", ""), ("Wanderschuh", "Wanderschuhe", "m"), ("chaussure de randonnée", "chaussures de randonnée", "f"), ("bota de montaña", "botas de montaña", "f"), ("scarpone da trekking", "scarponi da trekking", "m"),
       ["leather", "suede", "synthetic"], ["waterproof", "lightweight"], "apparel", "shoe_size", _SHOE, ["Salomon", "Merrell", "Lowa", "Meindl", "The North Face"]),
    _t("sneaker", "footwear", ("sneaker", "sneakers", ""), ("Sneaker", "Sneaker", "m"), ("basket", "baskets", "f"), ("zapatilla urbana", "zapatillas urbanas", "f"), ("sneaker", "sneakers", "f"),
       ["leather", "canvas", "suede"], [], "apparel", "shoe_size", _SHOE, ["Nike", "Adidas", "Puma", "Vans", "Converse", "Veja"]),
    _t("sandal", "footwear", ("sandal", "sandals", ""), ("Sandale", "Sandalen", "f"), ("sandale", "sandales", "f"), ("sandalia", "sandalias", "f"), ("sandalo", "sandali", "m"),
       ["leather", "cork", "rubber"], ["lightweight"], "apparel", "shoe_size", _SHOE, ["Birkenstock", "Teva", "Ecco", "Geox"]),
    _t("slipper", "footwear", ("slipper", "slippers", ""), ("Hausschuh", "Hausschuhe", "m"), ("chausson", "chaussons", "m"), ("zapatilla de casa", "zapatillas de casa", "f"), ("pantofola", "pantofole", "f"),
       ["wool", "felt", "cotton"], ["non_slip"], "apparel", "shoe_size", _SHOE, ["Giesswein", "Haflinger", "UGG", "Birkenstock"]),
    _t("t_shirt", "clothing", ("T-shirt", "T-shirts", ""), ("T-Shirt", "T-Shirts", "n"), ("t-shirt", "t-shirts", "m"), ("camiseta", "camisetas", "f"), ("maglietta", "magliette", "f"),
       ["cotton", "linen", "polyester"], ["slim_fit"], "apparel", "clothing_size", _CLOTHES, ["Levi's", "Uniqlo", "Tommy Hilfiger", "Adidas", "Nike"]),
    _t("rain_jacket", "clothing", ("rain jacket", "rain jackets", ""), ("Regenjacke", "Regenjacken", "f"), ("veste de pluie", "vestes de pluie", "f"), ("chubasquero", "chubasqueros", "m"), ("giacca antipioggia", "giacche antipioggia", "f"),
       ["nylon", "polyester"], ["hooded", "lightweight"], "apparel", "clothing_size", _CLOTHES, ["The North Face", "Patagonia", "Jack Wolfskin", "Columbia", "Helly Hansen"]),
    _t("hoodie", "clothing", ("hoodie", "hoodies", ""), ("Kapuzenpullover", "Kapuzenpullover", "m"), ("sweat à capuche", "sweats à capuche", "m"), ("sudadera con capucha", "sudaderas con capucha", "f"), ("felpa con cappuccio", "felpe con cappuccio", "f"),
       ["cotton", "fleece", "polyester"], [], "apparel", "clothing_size", _CLOTHES, ["Nike", "Adidas", "Champion", "Carhartt", "Puma"]),
    _t("jeans", "clothing", ("jeans", "jeans", ""), ("Jeans", "Jeans", "f"), ("jean", "jeans", "m"), ("vaquero", "vaqueros", "m"), ("jeans", "jeans", "mp"),
       ["denim"], ["slim_fit"], "apparel", "clothing_size", _CLOTHES, ["Levi's", "Wrangler", "Lee", "Diesel", "G-Star"]),
    _t("winter_coat", "clothing", ("winter coat", "winter coats", ""), ("Wintermantel", "Wintermäntel", "m"), ("manteau d'hiver", "manteaux d'hiver", "m"), ("abrigo de invierno", "abrigos de invierno", "m"), ("cappotto invernale", "cappotti invernali", "m"),
       ["wool", "down", "polyester"], ["waterproof", "hooded"], "apparel", "clothing_size", _CLOTHES, ["The North Face", "Columbia", "Patagonia", "Tommy Hilfiger", "Jack Wolfskin"]),
    _t("headphones", "electronics", ("headphones", "headphones", ""), ("Kopfhörer", "Kopfhörer", "m"), ("casque audio", "casques audio", "m"), ("auriculares", "auriculares", "mp"), ("cuffie", "cuffie", "fp"),
       ["plastic", "aluminium"], ["wireless", "noise_cancelling"], "tech", None, [], ["Sony", "Bose", "Sennheiser", "JBL", "Apple"]),
    _t("smartphone", "electronics", ("smartphone", "smartphones", ""), ("Smartphone", "Smartphones", "n"), ("smartphone", "smartphones", "m"), ("smartphone", "smartphones", "m"), ("smartphone", "smartphone", "m"),
       ["aluminium", "glass"], [], "tech", "storage_gb", ["64", "128", "256", "512"], ["Samsung", "Apple", "Xiaomi", "Google", "Motorola"]),
    _t("television", "electronics", ("TV", "TVs", ""), ("Fernseher", "Fernseher", "m"), ("téléviseur", "téléviseurs", "m"), ("televisor", "televisores", "m"), ("televisore", "televisori", "m"),
       [], ["4k", "oled"], "tech", "screen_in", ["43", "50", "55", "65"], ["Samsung", "LG", "Sony", "Philips", "TCL"]),
    _t("laptop", "electronics", ("laptop", "laptops", ""), ("Laptop", "Laptops", "m"), ("ordinateur portable", "ordinateurs portables", "m"), ("portátil", "portátiles", "m"), ("computer portatile", "computer portatili", "m"),
       ["aluminium", "plastic"], ["lightweight"], "tech", "screen_in", ["13.3", "14", "15.6", "16"], ["Lenovo", "HP", "Dell", "Apple", "Asus"]),
    _t("bluetooth_speaker", "electronics", ("Bluetooth speaker", "Bluetooth speakers", ""), ("Bluetooth-Lautsprecher", "Bluetooth-Lautsprecher", "m"), ("enceinte Bluetooth", "enceintes Bluetooth", "f"), ("altavoz Bluetooth", "altavoces Bluetooth", "m"), ("cassa Bluetooth", "casse Bluetooth", "f"),
       ["plastic", "fabric"], ["waterproof", "rechargeable"], "bright", None, [], ["JBL", "Bose", "Sony", "Marshall", "Ultimate Ears"]),
    _t("frying_pan", "kitchen", ("frying pan", "frying pans", ""), ("Bratpfanne", "Bratpfannen", "f"), ("poêle", "poêles", "f"), ("sartén", "sartenes", "f"), ("padella", "padelle", "f"),
       ["aluminium", "cast_iron", "stainless_steel"], ["non_stick", "induction"], "kitchen", "cm", ["20", "24", "28", "32"], ["Tefal", "WMF", "Le Creuset", "Fissler", "Zwilling"]),
    _t("coffee_maker", "kitchen", ("coffee machine", "coffee machines", ""), ("Kaffeemaschine", "Kaffeemaschinen", "f"), ("cafetière", "cafetières", "f"), ("cafetera", "cafeteras", "f"), ("macchina da caffè", "macchine da caffè", "f"),
       ["stainless_steel", "plastic"], ["programmable"], "kitchen", "capacity_l", ["1.2", "1.5", "1.8"], ["De'Longhi", "Philips", "Krups", "Melitta", "Bosch"]),
    _t("kettle", "kitchen", ("kettle", "kettles", ""), ("Wasserkocher", "Wasserkocher", "m"), ("bouilloire", "bouilloires", "f"), ("hervidor de agua", "hervidores de agua", "m"), ("bollitore", "bollitori", "m"),
       ["stainless_steel", "glass", "plastic"], [], "kitchen", "capacity_l", ["1", "1.5", "1.7"], ["Bosch", "Russell Hobbs", "Philips", "Smeg", "Tefal"]),
    _t("blender", "kitchen", ("blender", "blenders", ""), ("Standmixer", "Standmixer", "m"), ("blender", "blenders", "m"), ("batidora de vaso", "batidoras de vaso", "f"), ("frullatore", "frullatori", "m"),
       ["glass", "plastic", "stainless_steel"], [], "kitchen", "power_w", ["600", "900", "1200"], ["Bosch", "Philips", "KitchenAid", "Ninja", "Moulinex"]),
    _t("chef_knife", "kitchen", ("chef's knife", "chef's knives", ""), ("Kochmesser", "Kochmesser", "n"), ("couteau de chef", "couteaux de chef", "m"), ("cuchillo de chef", "cuchillos de chef", "m"), ("coltello da cuoco", "coltelli da cuoco", "m"),
       ["stainless_steel", "ceramic"], ["dishwasher_safe"], "kitchen", "cm", ["16", "20", "24"], ["Zwilling", "WMF", "Victorinox", "Global", "Wüsthof"]),
    _t("office_chair", "furniture", ("office chair", "office chairs", ""), ("Bürostuhl", "Bürostühle", "m"), ("chaise de bureau", "chaises de bureau", "f"), ("silla de oficina", "sillas de oficina", "f"), ("sedia da ufficio", "sedie da ufficio", "f"),
       ["fabric", "leather"], ["ergonomic", "height_adjustable"], "home", None, [], ["Herman Miller", "Steelcase", "IKEA", "Hbada", "Songmics"]),
    _t("sofa", "furniture", ("sofa", "sofas", ""), ("Sofa", "Sofas", "n"), ("canapé", "canapés", "m"), ("sofá", "sofás", "m"), ("divano", "divani", "m"),
       ["fabric", "velvet", "leather"], [], "home", "seats", ["2", "3", "4"], ["IKEA", "Kave Home", "Westwing", "Habitat"]),
    _t("desk", "furniture", ("desk", "desks", ""), ("Schreibtisch", "Schreibtische", "m"), ("bureau", "bureaux", "m"), ("escritorio", "escritorios", "m"), ("scrivania", "scrivanie", "f"),
       ["wood", "oak", "metal"], ["height_adjustable"], "home", "cm", ["100", "120", "140", "160"], ["IKEA", "Flexispot", "Songmics", "Kave Home"]),
    _t("bookshelf", "furniture", ("bookcase", "bookcases", ""), ("Bücherregal", "Bücherregale", "n"), ("bibliothèque", "bibliothèques", "f"), ("estantería", "estanterías", "f"), ("libreria", "librerie", "f"),
       ["wood", "oak", "metal"], [], "home", None, [], ["IKEA", "Songmics", "Vasagle", "Kave Home"]),
    _t("desk_lamp", "furniture", ("desk lamp", "desk lamps", ""), ("Schreibtischlampe", "Schreibtischlampen", "f"), ("lampe de bureau", "lampes de bureau", "f"), ("lámpara de escritorio", "lámparas de escritorio", "f"), ("lampada da scrivania", "lampade da scrivania", "f"),
       ["metal", "plastic"], ["dimmable", "rechargeable"], "home", None, [], ["Philips", "IKEA", "Artemide", "BenQ"]),
    _t("yoga_mat", "sports", ("yoga mat", "yoga mats", ""), ("Yogamatte", "Yogamatten", "f"), ("tapis de yoga", "tapis de yoga", "m"), ("esterilla de yoga", "esterillas de yoga", "f"), ("tappetino yoga", "tappetini yoga", "m"),
       ["rubber", "cork"], ["non_slip"], "bright", "thickness_mm", ["4", "6", "8"], ["Manduka", "Liforme", "Gaiam", "Domyos", "Adidas"]),
    _t("tennis_racket", "sports", ("tennis racket", "tennis rackets", ""), ("Tennisschläger", "Tennisschläger", "m"), ("raquette de tennis", "raquettes de tennis", "f"), ("raqueta de tenis", "raquetas de tenis", "f"), ("racchetta da tennis", "racchette da tennis", "f"),
       ["carbon", "aluminium"], ["lightweight"], "bright", "weight_g", ["270", "285", "300"], ["Wilson", "Head", "Babolat", "Yonex"]),
    _t("water_bottle", "sports", ("water bottle", "water bottles", ""), ("Trinkflasche", "Trinkflaschen", "f"), ("gourde", "gourdes", "f"), ("botella de agua", "botellas de agua", "f"), ("borraccia", "borracce", "f"),
       ["stainless_steel", "glass", "plastic"], ["insulated", "leakproof"], "bright", "capacity_l", ["0.5", "0.75", "1"], ["Nalgene", "Sigg", "Camelbak", "Stanley", "Hydro Flask"]),
    _t("dumbbell", "sports", ("dumbbell", "dumbbells", ""), ("Kurzhantel", "Kurzhanteln", "f"), ("haltère", "haltères", "m"), ("mancuerna", "mancuernas", "f"), ("manubrio", "manubri", "m"),
       ["cast_iron", "rubber"], [], "bright", "mass_kg", ["2", "5", "10", "20"], ["Domyos", "Bowflex", "Reebok", "Gorilla Sports"]),
    _t("bike_helmet", "sports", ("bike helmet", "bike helmets", ""), ("Fahrradhelm", "Fahrradhelme", "m"), ("casque de vélo", "casques de vélo", "m"), ("casco de bicicleta", "cascos de bicicleta", "m"), ("casco da bici", "caschi da bici", "m"),
       ["plastic", "carbon"], ["lightweight"], "bright", "clothing_size", ["S", "M", "L"], ["Abus", "Uvex", "Giro", "Specialized", "Bell"]),
    _t("backpack", "bags", ("backpack", "backpacks", ""), ("Rucksack", "Rucksäcke", "m"), ("sac à dos", "sacs à dos", "m"), ("mochila", "mochilas", "f"), ("zaino", "zaini", "m"),
       ["nylon", "polyester", "leather", "canvas"], ["waterproof"], "apparel", "capacity_l", ["20", "30", "40"], ["Deuter", "Osprey", "Eastpak", "Fjällräven", "The North Face"]),
    _t("suitcase", "bags", ("suitcase", "suitcases", ""), ("Koffer", "Koffer", "m"), ("valise", "valises", "f"), ("maleta", "maletas", "f"), ("valigia", "valigie", "f"),
       ["aluminium", "plastic"], ["lightweight"], "bright", "capacity_l", ["35", "65", "90"], ["Samsonite", "Rimowa", "American Tourister", "Delsey", "Travelite"]),
    _t("handbag", "bags", ("handbag", "handbags", ""), ("Handtasche", "Handtaschen", "f"), ("sac à main", "sacs à main", "m"), ("bolso", "bolsos", "m"), ("borsa", "borse", "f"),
       ["leather", "suede", "canvas"], [], "apparel", None, [], ["Michael Kors", "Guess", "Furla", "Coach", "Fossil"]),
    _t("wallet", "bags", ("wallet", "wallets", ""), ("Geldbörse", "Geldbörsen", "f"), ("portefeuille", "portefeuilles", "m"), ("cartera", "carteras", "f"), ("portafoglio", "portafogli", "m"),
       ["leather", "canvas"], [], "apparel", None, [], ["Fossil", "Tommy Hilfiger", "Montblanc", "Bellroy", "Guess"]),
    _t("sports_bag", "bags", ("sports bag", "sports bags", ""), ("Sporttasche", "Sporttaschen", "f"), ("sac de sport", "sacs de sport", "m"), ("bolsa de deporte", "bolsas de deporte", "f"), ("borsa sportiva", "borse sportive", "f"),
       ["polyester", "nylon"], ["waterproof"], "bright", "capacity_l", ["30", "50", "70"], ["Adidas", "Nike", "Puma", "Under Armour", "The North Face"]),
    _t("hair_dryer", "personal_care", ("hair dryer", "hair dryers", ""), ("Haartrockner", "Haartrockner", "m"), ("sèche-cheveux", "sèche-cheveux", "m"), ("secador de pelo", "secadores de pelo", "m"), ("asciugacapelli", "asciugacapelli", "m"),
       [], ["foldable"], "bright", "power_w", ["1800", "2000", "2200"], ["Dyson", "Philips", "Remington", "Braun", "Rowenta"]),
    _t("electric_toothbrush", "personal_care", ("electric toothbrush", "electric toothbrushes", ""), ("elektrische Zahnbürste", "elektrische Zahnbürsten", "f"), ("brosse à dents électrique", "brosses à dents électriques", "f"), ("cepillo de dientes eléctrico", "cepillos de dientes eléctricos", "m"), ("spazzolino elettrico", "spazzolini elettrici", "m"),
       [], ["rechargeable"], "bright", None, [], ["Oral-B", "Philips", "Oclean"]),
    _t("shaver", "personal_care", ("electric shaver", "electric shavers", ""), ("Elektrorasierer", "Elektrorasierer", "m"), ("rasoir électrique", "rasoirs électriques", "m"), ("afeitadora eléctrica", "afeitadoras eléctricas", "f"), ("rasoio elettrico", "rasoi elettrici", "m"),
       ["plastic", "aluminium"], ["waterproof", "rechargeable"], "tech", None, [], ["Braun", "Philips", "Panasonic", "Remington"]),
    _t("hair_straightener", "personal_care", ("hair straightener", "hair straighteners", ""), ("Glätteisen", "Glätteisen", "n"), ("lisseur", "lisseurs", "m"), ("plancha de pelo", "planchas de pelo", "f"), ("piastra per capelli", "piastre per capelli", "f"),
       ["ceramic"], [], "bright", None, [], ["GHD", "Remington", "Babyliss", "Rowenta", "Dyson"]),
    _t("beard_trimmer", "personal_care", ("beard trimmer", "beard trimmers", ""), ("Bartschneider", "Bartschneider", "m"), ("tondeuse à barbe", "tondeuses à barbe", "f"), ("recortadora de barba", "recortadoras de barba", "f"), ("regolabarba", "regolabarba", "m"),
       ["stainless_steel", "plastic"], ["waterproof", "rechargeable"], "tech", None, [], ["Philips", "Braun", "Remington", "Wahl"]),
)

_DESC: Mapping[str, Mapping[str, str]] = {
    "en": {"colour": "Colour: {}.", "category": "Category: {}.", "by": "{type} by {brand}"},
    "de": {"colour": "Farbe: {}.", "category": "Kategorie: {}.", "by": "{type} von {brand}"},
    "fr": {"colour": "Couleur : {}.", "category": "Catégorie : {}.", "by": "{type} de la marque {brand}"},
    "es": {"colour": "Color: {}.", "category": "Categoría: {}.", "by": "{type} de la marca {brand}"},
    "it": {"colour": "Colore: {}.", "category": "Categoria: {}.", "by": "{type} del marchio {brand}"},
}


# fmt: on

_TYPE_NAMES: tuple[str, ...] = tuple(t.key for t in _PRODUCT_TYPES)
_CATEGORIES = tuple(dict.fromkeys(t.category for t in _PRODUCT_TYPES))
_BRANDS = tuple(sorted({b for t in _PRODUCT_TYPES for b in t.brands}))  # sorted: no hash order
_COLOUR_NAMES = tuple(_COLOURS)
_MATERIAL_NAMES = tuple(_MATERIALS)
_FEATURE_NAMES = tuple(_FEATURES)


def _idx(names: Sequence[str], table: tuple[str, ...]) -> np.ndarray:
    return np.array([table.index(n) for n in names], dtype=np.int64)


# Per product type: its category and, ragged, the global indexes of the values it may take.
_TYPE_CATEGORY = _idx([t.category for t in _PRODUCT_TYPES], _CATEGORIES)
_TYPE_BRANDS = tuple(_idx(t.brands, _BRANDS) for t in _PRODUCT_TYPES)
_TYPE_COLOURS = tuple(_idx(_PALETTES[t.palette], _COLOUR_NAMES) for t in _PRODUCT_TYPES)
_TYPE_MATERIALS = tuple(_idx(t.materials, _MATERIAL_NAMES) for t in _PRODUCT_TYPES)
_TYPE_FEATURES = tuple(_idx(t.features, _FEATURE_NAMES) for t in _PRODUCT_TYPES)
_TYPE_N_SPEC = np.array([len(t.spec_values) for t in _PRODUCT_TYPES], dtype=np.int64)


def _ragged_choice(
    rng: np.random.Generator, type_idx: np.ndarray, options: tuple[np.ndarray, ...]
) -> np.ndarray:
    """For each row pick uniformly one of ``options[type_idx[row]]`` (-1 where a type has none)."""
    counts = np.array([len(o) for o in options], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    flat = np.concatenate([*options, np.array([-1], dtype=np.int64)])
    u = rng.random(len(type_idx))
    n = counts[type_idx]
    pos = offsets[type_idx] + np.minimum((u * n).astype(np.int64), np.maximum(n - 1, 0))
    return np.where(n > 0, flat[np.where(n > 0, pos, len(flat) - 1)], -1)


class _Items(NamedTuple):
    """Structured items: one row per catalog item, integer codes (-1 = attribute absent)."""

    type: np.ndarray
    brand: np.ndarray
    colour: np.ndarray
    material: np.ndarray
    spec: np.ndarray
    feature: np.ndarray
    language: np.ndarray
    variant: np.ndarray

    def columns(self) -> np.ndarray:
        """The five query-able attributes as an ``(n, 5)`` array (``_BRAND`` ... ``_FEATURE``)."""
        return np.stack([self.brand, self.colour, self.material, self.spec, self.feature], axis=1)


def _draw_items(rng: np.random.Generator, n: int, s: _Settings) -> _Items:
    """``n`` random items: a product type, then attribute values that type takes."""
    type_idx = rng.integers(len(_PRODUCT_TYPES), size=n)
    options = (_TYPE_BRANDS, _TYPE_COLOURS, _TYPE_MATERIALS, _TYPE_FEATURES)
    brand, colour, material, feature = (_ragged_choice(rng, type_idx, o) for o in options)
    feature = np.where(rng.random(n) < s.feature_rate, feature, -1)
    n_spec = _TYPE_N_SPEC[type_idx]
    spec = np.where(n_spec > 0, (rng.random(n) * np.maximum(n_spec, 1)).astype(np.int64), -1)
    language = rng.choice(len(s.lang_p), size=n, p=s.lang_p)
    variant = rng.integers(2, size=n)
    return _Items(type_idx, brand, colour, material, spec, feature, language, variant)


def _unique_rows(items: _Items, n: int) -> np.ndarray:
    """Indexes of the first ``n`` structurally distinct items (same structure = same title)."""
    key = np.zeros(len(items.type), dtype=np.int64)
    for code in items:  # mixed-radix packing of every code (+1 for "absent")
        code = code + 1
        key = key * (int(code.max(initial=0)) + 1) + code
    _, first = np.unique(key, return_index=True)
    return np.sort(first)[:n]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _romance(forms: tuple[str, str, str, str], gender: str, plural: bool) -> str:
    """Agree a Romance adjective with a noun of ``gender`` (m/f/mp/fp), singular or plural."""
    fem = gender.startswith("f")
    plural = plural or gender.endswith("p")
    return forms[(2 if plural else 0) + (1 if fem else 0)]


def _de_attributive(colour: tuple[str, str | None], gender: str, plural: bool) -> str:
    """A German colour adjective before a noun (strong ending; invariable ones unchanged)."""
    pred, stem = colour
    if stem is None:
        return pred
    return stem + ("e" if plural else {"m": "er", "f": "e", "n": "es"}[gender])


def _spec_text(pt: _ProductType, spec: int, lang: str, query: bool) -> str:
    """Size or capacity ``spec`` as a title or a query writes it (a decimal comma outside en)."""
    value = pt.spec_values[spec] if lang == "en" else pt.spec_values[spec].replace(".", ",")
    return (_SPEC_QUERY if query else _SPEC_TITLE)[pt.spec_kind][lang].format(v=value)


@dataclass(frozen=True)
class _Words:
    """The words describing one product in one language (empty string = attribute absent)."""

    noun: str
    gender: str
    brand: str
    colour: str
    colour_key: str
    material: str
    feature: str
    spec: str


def _item_words(
    pt: _ProductType, codes: Sequence[int], lang: str, plural: bool, query: bool
) -> _Words:
    """The words of an item or query in ``lang``, adjectives agreeing; code -1 = not named."""
    brand, colour, material, spec, feature = (int(c) for c in codes)
    sg, pl, gender = pt.names[lang]

    def adjective(table: Mapping[str, Mapping[str, Any]], key: str) -> str:
        forms = table[key][lang]
        if lang in _ROMANCE:
            return _romance(forms, gender, plural)
        return forms[0] if isinstance(forms, tuple) else forms  # de colours: the predicative

    colour_key = _COLOUR_NAMES[colour] if colour >= 0 else ""
    m = ""
    if material >= 0:
        m_entry = _MATERIALS[_MATERIAL_NAMES[material]][lang]
        m = m_entry if lang == "en" else m_entry[1 if query else 0]
    return _Words(
        pl if plural else sg,
        gender,
        _BRANDS[brand] if brand >= 0 else "",
        adjective(_COLOURS, colour_key) if colour >= 0 else "",
        colour_key,
        m,
        adjective(_FEATURES, _FEATURE_NAMES[feature]) if feature >= 0 else "",
        _spec_text(pt, spec, lang, query) if spec >= 0 else "",
    )


def _join(head: Sequence[str], tail: Sequence[str] = ()) -> str:
    """The non-empty ``head`` words, then the non-empty ``tail`` parts after commas."""
    text = " ".join(w for w in head if w)
    rest = [w for w in tail if w]
    return ", ".join([text, *rest]) if rest else text


def _title(w: _Words, lang: str, variant: int) -> str:
    """A catalog title in the listing language; ``variant`` picks one of two house styles."""
    if lang == "en":
        if variant == 0:  # Nike waterproof leather running shoe, red, size 42
            text = _join([w.brand, w.feature, w.material, w.noun], [w.colour, w.spec])
        else:  # Red leather running shoe by Nike, waterproof, size 42
            text = _join([w.colour, w.material, w.noun, "by", w.brand], [w.feature, w.spec])
    elif lang == "de":
        if variant == 0:  # Nike Laufschuh aus Leder, wasserdicht, rot, Größe 42
            text = _join([w.brand, w.noun, w.material], [w.feature, w.colour, w.spec])
        else:  # Roter Laufschuh von Nike aus Leder, wasserdicht, Größe 42
            colour = _de_attributive(_COLOURS[w.colour_key]["de"], w.gender, False)
            text = _join([colour, w.noun, "von", w.brand, w.material], [w.feature, w.spec])
    elif variant == 0:  # Chaussure de course Nike en cuir, imperméable, rouge, pointure 42
        text = _join([w.noun, w.brand, w.material], [w.feature, w.colour, w.spec])
    else:  # Chaussure de course rouge imperméable Nike en cuir, pointure 42
        text = _join([w.noun, w.colour, w.feature, w.brand, w.material], [w.spec])
    return _cap(text)


def _description(w: _Words, pt: _ProductType, lang: str) -> str:
    """A longer body text: who makes it, what it is made of, colour, size, category."""
    d = _DESC[lang]
    first = _cap(d["by"].format(type=w.noun, brand=w.brand))
    if w.material:
        noun = {"wooden": "wood"}.get(w.material, w.material)
        first += " " + (f"made of {noun}" if lang == "en" else w.material)
    base = _COLOURS[w.colour_key][lang]  # "Colour: <base form>", no agreement after a label
    parts = [first + ".", d["colour"].format(base if lang == "en" else base[0])]
    parts += [_cap(x) + "." for x in (w.feature, w.spec) if x]
    parts.append(d["category"].format(_CATEGORY_NAMES[pt.category][lang]))
    return " ".join(parts)


def _query_text(w: _Words, lang: str, order: int, plural: bool) -> str:
    """A lower-case shopper query; ``order`` 0 = natural word order, 1 = keyword style."""
    if order == 1:  # running shoes nike red leather 42
        words = [w.noun, w.brand, w.colour, w.material, w.feature, w.spec]
    elif lang == "en":  # nike waterproof red leather running shoes 42
        words = [w.brand, w.feature, w.colour, w.material, w.noun, w.spec]
    elif lang == "de":
        if plural and w.colour:  # rote laufschuhe nike leder 42
            colour = _de_attributive(_COLOURS[w.colour_key]["de"], w.gender, True)
            words = [colour, w.noun, w.brand, w.material, w.feature, w.spec]
        else:  # nike laufschuhe rot leder 42
            words = [w.brand, w.noun, w.colour, w.material, w.feature, w.spec]
    else:  # zapatillas de running rojas impermeables piel nike 42
        words = [w.noun, w.colour, w.feature, w.material, w.brand, w.spec]
    return " ".join(x for x in words if x).lower()


def _typo(text: str, u: float) -> str:
    """Swap two adjacent letters inside the longest alphabetic word (if it has >= 5 letters)."""
    words = text.split(" ")
    best = max(range(len(words)), key=lambda i: (len(words[i]) * words[i].isalpha(), -i))
    word = words[best]
    if len(word) < 5 or not word.isalpha():
        return text
    p = 1 + int(u * (len(word) - 3))  # never the first letter, never past the end
    words[best] = word[:p] + word[p + 1] + word[p] + word[p + 2 :]
    return " ".join(words)


def _draw_queries(
    rng: np.random.Generator, items: _Items, m: int, s: _Settings
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray]:
    """``m`` queries drawn from seed items (language, intent, which attributes they name) and
    rendered: ``(seed, language, texts, mask, typo)``, masks trimmed to MAX_QUERY_WORDS."""
    n_lang = len(s.languages)
    seed = rng.integers(len(items.type), size=m)
    cross = (rng.random(m) < s.cross_lingual_rate) & (n_lang > 1)
    shift = rng.integers(1, max(n_lang, 2), size=m)  # another language, uniformly
    language = np.where(cross, (items.language[seed] + shift) % n_lang, items.language[seed])
    intent = rng.choice(len(INTENTS), size=m, p=s.intent_p)
    cols = items.columns()
    available = cols[seed] >= 0
    # Rank the non-brand attributes the seed item has in random order; name the first k.
    keys = np.where(available[:, 1:], rng.random((m, 4)), np.inf)
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    n_avail = available[:, 1:].sum(axis=1)
    k_specific = np.minimum(rng.integers(1, 4, size=m), n_avail)
    k = np.select([intent == 2, intent == 3], [np.minimum(1, n_avail), k_specific], 0)
    mask = np.zeros((m, 5), dtype=bool)
    mask[:, 0] = (intent == 1) | (intent == 3)
    mask[:, 1:] = rank < k[:, None]
    plural = rng.random(m) < np.where(intent == 3, 0.15, 0.5)
    order = rng.integers(2, size=m)
    typo_u, typo_pos = rng.random(m), rng.random(m)  # typo_u < typo_rate: make a typo
    texts: list[str] = []
    typo = np.zeros(m, dtype=bool)
    for q, row in enumerate(seed):
        pt = _PRODUCT_TYPES[items.type[row]]
        lang, plural_q = s.languages[language[q]], bool(plural[q])
        while True:
            named = mask[q]
            w = _item_words(pt, np.where(named, cols[row], -1), lang, plural_q, query=True)
            text = _query_text(w, lang, int(order[q]), plural_q)
            if len(text.split()) <= MAX_QUERY_WORDS or not named.any():
                break
            mask[q, next(a for a in _DROP_ORDER if named[a])] = False
        if typo_u[q] < s.typo_rate:
            typoed = _typo(text, float(typo_pos[q]))
            typo[q] = typoed != text
            text = typoed
        texts.append(text)
    return seed, language, texts, mask, typo


def _intent_of(mask: np.ndarray) -> np.ndarray:
    """Intent from the attributes a query names (after word-limit trimming)."""
    n_other, brand = mask[:, 1:].sum(axis=1), mask[:, 0]
    bare = n_other == 0  # no attribute but the brand named
    return np.select([~brand & bare, brand & bare, ~brand & (n_other == 1)], [0, 1, 2], 3)


def _top_per_grade(
    grade: np.ndarray, key: np.ndarray, cand: np.ndarray, caps: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(query_pos, item_row, grade)``: per query and grade g the ``caps[g]`` candidates of
    smallest ``key`` (argpartition: no full sort of the category)."""
    out_q, out_i, out_g = [], [], []
    for g in (3, 2, 1):
        k = min(int(caps[g]), key.shape[1])
        if k == 0:
            continue
        key_g = np.where(grade == g, key, np.inf)
        top = np.argpartition(key_g, k - 1, axis=1)[:, :k]
        qpos, col = np.nonzero(np.isfinite(np.take_along_axis(key_g, top, axis=1)))
        out_q.append(qpos)
        out_i.append(cand[top[qpos, col]])
        out_g.append(np.full(len(qpos), g, dtype=np.int64))
    return np.concatenate(out_q), np.concatenate(out_i), np.concatenate(out_g)


def _judge(
    rng: np.random.Generator, items: _Items, seed: np.ndarray, mask: np.ndarray, s: _Settings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All judged ``(query, item, grade)`` triples, from the structure alone: each query's pool in
    its category (grade 2 by fewest mismatches, grade 1 by most shared named attributes, the seed
    item first), then hard negatives of other categories."""
    cols = items.columns()
    q_type = items.type[seed]
    item_cat = _TYPE_CATEGORY[items.type]
    out_q, out_i, out_g = [], [], []
    for t in np.unique(q_type):  # one vectorised block per product type, in index order
        qs = np.flatnonzero(q_type == t)
        cat = _TYPE_CATEGORY[t]
        cand = np.flatnonzero(item_cat == cat)
        rand = rng.random((len(qs), len(cand)))
        q_cols, q_mask = cols[seed[qs]], mask[qs]
        differs = (cols[cand][None, :, :] != q_cols[:, None, :]) & q_mask[:, None, :]  # (g, n, 5)
        mismatches = differs.sum(axis=2)
        shared = ((~differs) & q_mask[:, None, :])[:, :, _SHARED].sum(2)
        grade = np.where(items.type[cand][None, :] == t, np.where(mismatches == 0, 3, 2), 1)
        secondary = np.where(grade == 1, -shared, mismatches)  # in -4..5
        # One float key = lexicographic (seed first, secondary asc, random tie-break) per grade.
        key = (cand[None, :] != seed[qs][:, None]) * 20.0 + (secondary + 5) + rand * 0.5
        qpos, item, grade = _top_per_grade(grade, key, cand, s.caps)
        out_q.append(qs[qpos])
        out_i.append(item)
        out_g.append(grade)
        others = np.flatnonzero(item_cat != cat)
        if s.hard_negatives > 0 and len(others):
            # Hard negatives: sharing most of the query's named, then its seed's, values (a named
            # attribute counts twice).
            pool = rng.choice(others, size=min(len(others), 256), replace=False)
            rand = rng.random((len(qs), len(pool)))
            q = q_cols[:, None, _SHARED]
            same = (cols[pool][None, :, _SHARED] == q) & (q >= 0)
            score = same.sum(axis=2) + (same & q_mask[:, None, _SHARED]).sum(axis=2)
            order = np.lexsort((rand, -score), axis=-1)[:, : s.hard_negatives]
            out_q.append(np.repeat(qs, order.shape[1]))
            out_i.append(pool[order.ravel()])
            out_g.append(np.zeros(order.size, dtype=np.int64))
    return np.concatenate(out_q), np.concatenate(out_i), np.concatenate(out_g)


@dataclass
class _Settings:
    """``load_demo``'s generation settings, checked (``ConfigError`` naming the key), normalised."""

    n_items: int
    n_queries: int
    seed: int
    languages: Sequence[str]
    language_weights: Sequence[float] | None
    cross_lingual_rate: float
    intent_mix: Mapping[str, float] | None
    feature_rate: float
    typo_rate: float
    pool_exact: int
    pool_partial: int
    pool_category: int
    hard_negatives: int
    lang_p: np.ndarray = field(init=False)  # in ``languages`` order
    intent_p: np.ndarray = field(init=False)  # in ``INTENTS`` order
    caps: np.ndarray = field(init=False)  # judged items per query, indexed by grade (0 unused)

    def __post_init__(self) -> None:
        self.languages = [str(x) for x in self.languages]
        if self.language_weights is not None:
            self.language_weights = [float(x) for x in self.language_weights]
        for name in _RATES:
            setattr(self, name, float(getattr(self, name)))
        self._check()
        default_mix = dict(zip(INTENTS, (0.12, 0.18, 0.30, 0.40)))
        mix = default_mix if self.intent_mix is None else dict(self.intent_mix)
        if set(mix) - set(INTENTS) or min(mix.values(), default=-1) < 0 or sum(mix.values()) <= 0:
            raise ConfigError(
                f"dataset.intent_mix={mix} is invalid (expected non-negative weights for {list(INTENTS)})"
            )
        self.caps = np.array([0, self.pool_category, self.pool_partial, self.pool_exact], np.int64)
        if self.caps[3] < 1 or self.caps.min() < 0 or self.hard_negatives < 0:
            raise ConfigError(
                "dataset.pool_exact must be >= 1 and pool_partial, pool_category, hard_negatives >= 0"
            )
        w = np.array(self.language_weights or [1 / (i + 1) for i in range(len(self.languages))])
        self.lang_p = w / w.sum()
        intent_p = np.array([mix.get(i, 0.0) for i in INTENTS])
        self.intent_p = intent_p / intent_p.sum()
        for name in ("n_items", "n_queries", "seed", "hard_negatives"):
            setattr(self, name, int(getattr(self, name)))

    def _check(self) -> None:
        langs, weights = self.languages, self.language_weights
        if int(self.n_items) < 50:
            raise ConfigError(
                f"dataset.n_items={self.n_items} is too small (expected an integer >= 50)"
            )
        if int(self.n_queries) < 1:
            raise ConfigError(
                f"dataset.n_queries={self.n_queries} is invalid (expected an integer >= 1)"
            )
        if not langs:
            raise ConfigError("dataset.languages is empty (expected a list such as [en, de, fr])")
        unknown = [lang for lang in langs if lang not in SUPPORTED_LANGUAGES]
        if unknown:
            raise ConfigError(
                f"dataset.languages has unsupported {unknown} (expected a subset of "
                f"{list(SUPPORTED_LANGUAGES)})"
            )
        if len(set(langs)) != len(langs):
            raise ConfigError(f"dataset.languages={langs} repeats a language")
        if weights is not None and (
            len(weights) != len(langs) or min(weights) < 0 or sum(weights) <= 0
        ):
            raise ConfigError(
                f"dataset.language_weights={weights} is invalid (expected {len(langs)} "
                "non-negative numbers, one per language, not all zero)"
            )
        for name in _RATES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(
                    f"dataset.{name}={getattr(self, name)} is invalid (expected a number in [0, 1])"
                )


@dataclass(frozen=True)
class _DemoQueries:
    """The kept queries, one row each."""

    seed: np.ndarray
    language: np.ndarray
    mask: np.ndarray
    typo: np.ndarray
    texts: list[str]
    intent: np.ndarray
    frequency: np.ndarray


def _distinct_items(rng: np.random.Generator, s: _Settings) -> _Items:
    """``s.n_items`` structurally distinct items: oversampled, the first distinct ones kept."""
    n_items = s.n_items
    pool = _draw_items(rng, int(n_items * 1.5) + 64, s)
    rows = _unique_rows(pool, n_items)
    for _ in range(4):  # large catalogs: draw more until enough distinct products exist
        if len(rows) == n_items:
            break
        pool = _Items(*map(np.concatenate, zip(pool, _draw_items(rng, 2 * n_items, s))))
        rows = _unique_rows(pool, n_items)
    if len(rows) < n_items:
        raise ConfigError(
            f"dataset.n_items={n_items} exceeds what the demo vocabulary can vary (found "
            f"{len(rows)} distinct products; expected n_items <= about 100000)"
        )
    return _Items(*(code[rows] for code in pool))


def _distinct_queries(rng: np.random.Generator, items: _Items, s: _Settings) -> _DemoQueries:
    """``s.n_queries`` distinct queries, Zipf-like frequencies favouring broad queries."""
    seed, language, texts, mask, typo = _draw_queries(rng, items, 3 * s.n_queries + 50, s)
    keep = np.sort(np.unique(texts, return_index=True)[1])[: s.n_queries]  # first of each text
    if len(keep) < s.n_queries:
        raise ConfigError(
            f"dataset.n_queries={s.n_queries}: only {len(keep)} distinct queries could be "
            f"generated from {s.n_items} items (increase n_items or decrease n_queries)"
        )
    intent, n = _intent_of(mask[keep]), len(keep)
    popularity = np.array([3.0, 2.0, 1.5, 0.0])[intent] + rng.gumbel(size=n)
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), -popularity))] = np.arange(1, n + 1)
    return _DemoQueries(
        seed[keep],
        language[keep],
        mask[keep],
        typo[keep],
        [texts[i] for i in keep],
        intent,
        np.maximum(1.0, np.round(20000.0 * rank.astype(float) ** -1.05)),
    )


def _ids(prefix: str, n: int, width: int) -> list[str]:
    """``n`` ids: ``prefix`` and 1..n zero-padded to ``width`` digits (more when ``n`` needs them)."""
    return [f"{prefix}{i:0{max(width, len(str(n)))}d}" for i in range(1, n + 1)]


def _qrels(
    query_ids: Sequence[str],
    item_ids: Sequence[str],
    jq: np.ndarray,
    ji: np.ndarray,
    jg: np.ndarray,
) -> dict[str, dict[str, int]]:
    """The judged ``(query, item, grade)`` rows as qrels, each query's items in id order."""
    qrels: dict[str, dict[str, int]] = {qid: {} for qid in query_ids}
    for q, i, g in zip(jq.tolist(), ji.tolist(), jg.tolist()):
        qrels[query_ids[q]][item_ids[i]] = g
    return {qid: dict(sorted(qrels[qid].items())) for qid in query_ids}


def _names(codes: np.ndarray, table: Sequence[str]) -> list[str]:
    """The names of ``codes`` in ``table``, ``""`` where a code is -1 (absent)."""
    lookup = np.array([*table, ""], dtype=object)
    return lookup[np.where(codes >= 0, codes, len(table))].tolist()


def _catalog(items: _Items, languages: Sequence[str], descriptions: bool, source: str) -> Catalog:
    """The items as a ``Catalog`` (titles and descriptions in their listing language)."""
    titles, bodies = [], []
    for r, codes in enumerate(items.columns().tolist()):
        pt, lang = _PRODUCT_TYPES[items.type[r]], languages[items.language[r]]
        words = _item_words(pt, codes, lang, plural=False, query=False)
        titles.append(_title(words, lang, int(items.variant[r])))
        if descriptions:
            bodies.append(_description(words, pt, lang))
    sizes = [
        _spec_text(_PRODUCT_TYPES[t], s, "en", False) if s >= 0 else ""
        for t, s in zip(items.type.tolist(), items.spec.tolist())
    ]
    return Catalog(
        ids=_ids("p", len(titles), 5),
        titles=titles,
        texts=bodies if descriptions else None,
        attributes={
            "language": _names(items.language, languages),
            "category": _names(_TYPE_CATEGORY[items.type], _CATEGORIES),
            "product_type": _names(items.type, _TYPE_NAMES),
            "brand": _names(items.brand, _BRANDS),
            "colour": _names(items.colour, _COLOUR_NAMES),
            "material": _names(items.material, _MATERIAL_NAMES),
            "size": sizes,
            "feature": _names(items.feature, _FEATURE_NAMES),
        },
        source=source,
    )


def _queries(
    q: _DemoQueries, items: _Items, catalog: Catalog, languages: Sequence[str], cross: np.ndarray
) -> Queries:
    """The kept queries as ``Queries`` (``constraints``: e.g. ``brand=Nike|colour=red``)."""
    q_type = items.type[q.seed]
    columns = ("brand", "colour", "material", "size", "feature")  # _BRAND ... _FEATURE
    constraints = [
        "|".join(f"{c}={catalog.attributes[c][row]}" for c, on in zip(columns, named) if on)
        for row, named in zip(q.seed.tolist(), q.mask.tolist())
    ]
    return Queries(
        ids=_ids("q", len(q.texts), 4),
        texts=q.texts,
        language=_names(q.language, languages),
        frequency=q.frequency.tolist(),
        attributes={
            "intent": _names(q.intent, INTENTS),
            "category": _names(_TYPE_CATEGORY[q_type], _CATEGORIES),
            "product_type": _names(q_type, _TYPE_NAMES),
            "constraints": constraints,
            "cross_lingual": cross.tolist(),
            "typo": q.typo.tolist(),
        },
        source=catalog.source,
    )


def _generate(s: _Settings, text_field: str, descriptions: bool) -> EvalData:
    """The three tables as the demo's (synthetic) ``EvalData``, logged at INFO."""
    rng = np.random.default_rng(s.seed)
    items = _distinct_items(rng, s)
    q = _distinct_queries(rng, items, s)
    jq, ji, jg = _judge(rng, items, q.seed, q.mask, s)
    source = f"evalkit demo (synthetic, seed={s.seed})"
    catalog = _catalog(items, s.languages, descriptions, source)
    catalog.text_for(text_field)  # raises ConfigError for an unknown / unavailable field
    # Cross-lingual: no exact match (grade 3) is listed in the query's own language.
    exact = jg == 3
    same_lang = np.zeros(len(q.language), dtype=np.int64)
    np.add.at(same_lang, jq[exact], items.language[ji[exact]] == q.language[jq[exact]])
    queries = _queries(q, items, catalog, s.languages, same_lang == 0)
    judgments = Judgments(_qrels(queries.ids, catalog.ids, jq, ji, jg), "synthetic", source)
    log.info(
        "demo dataset: %d items, %d queries, %d judgments (seed=%d, languages=%s)",
        s.n_items,
        s.n_queries,
        len(judgments),
        s.seed,
        ",".join(s.languages),
    )
    return EvalData("demo", catalog, queries, judgments, synthetic=True, text_field=text_field)


def load_demo(
    n_items: int = 2000,
    n_queries: int = 300,
    seed: int = 0,
    languages: Sequence[str] = SUPPORTED_LANGUAGES,
    text_field: str = "title",
    simulate_clicks: bool = True,
    *,
    title_separator: str = " ",
    language_weights: Sequence[float] | None = None,
    cross_lingual_rate: float = 0.25,
    intent_mix: Mapping[str, float] | None = None,
    feature_rate: float = 0.5,
    typo_rate: float = 0.03,
    descriptions: bool = True,
    pool_exact: int = 64,
    pool_partial: int = 20,
    pool_category: int = 8,
    hard_negatives: int = 3,
) -> EvalData:
    """Generate the synthetic multilingual product-search dataset (deterministic in ``seed``).

    Args:
        n_items: catalog items generated.
        n_queries: queries generated.
        seed: the dataset's seed (same seed, same data, same fingerprint).
        languages: listing and query languages (of en, de, fr, es, it); the first is the main market.
        text_field: what is embedded for each item: ``title``, ``text`` (description), ``title_text``.
        simulate_clicks: attach a simulated click log (labelled simulated everywhere).
        title_separator: the string ``title_text`` joins title and description with.
        language_weights: one weight per language; null = ``1 / (i + 1)`` for language ``i``.
        cross_lingual_rate: share of queries written in another language than their item.
        intent_mix: weights of the intents broad, brand, attribute, specific; null = .12/.18/.3/.4.
        feature_rate: share of items with a feature (waterproof, wireless, ...).
        typo_rate: share of queries with a typo.
        descriptions: generate the description texts (needed by ``text`` / ``title_text``).
        pool_exact: judged items of grade 3 per query, at most.
        pool_partial: judged items of grade 2 per query, at most.
        pool_category: judged items of grade 1 per query, at most.
        hard_negatives: grade-0 items from other categories per query.

    >>> d = load_demo(n_items=200, n_queries=20, languages=["en", "de"], seed=3)
    >>> d.clicks.simulated, sorted(set(d.catalog.attributes["language"]))
    (True, ['de', 'en'])
    """
    s = _Settings(
        n_items=n_items, n_queries=n_queries, seed=seed, languages=languages,
        language_weights=language_weights, cross_lingual_rate=cross_lingual_rate,
        intent_mix=intent_mix, feature_rate=feature_rate, typo_rate=typo_rate,
        pool_exact=pool_exact, pool_partial=pool_partial, pool_category=pool_category,
        hard_negatives=hard_negatives,
    )  # fmt: skip
    data = _generate(s, text_field, descriptions)
    clicks = None
    if simulate_clicks:  # PBM clicks on a BM25 ranking
        from evalkit.data.click_simulation import simulate_demo_clicks

        clicks = simulate_demo_clicks(data, seed=s.seed)
    digest = clicks.digest() if clicks is not None else None
    fingerprint = fingerprint_data(
        data.catalog, data.queries, data.judgments, text_field, digest, None, title_separator
    )
    return replace(data, clicks=clicks, fingerprint=fingerprint, title_separator=title_separator)
