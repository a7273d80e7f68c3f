"""The fixed part of the demo: stores, towns, names, categories, products and tags."""

import random
import zoneinfo
from dataclasses import dataclass

from stdnum import ean

TIME_ZONE = "Europe/Amsterdam"
ZONE = zoneinfo.ZoneInfo(TIME_ZONE)


def _words(text: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(","))


@dataclass(frozen=True)
class Town:
    name: str
    region: str
    postal_codes: tuple[int, int]
    streets: tuple[str, ...]


@dataclass(frozen=True)
class DemoStore:
    code: str
    name: str
    address: str
    postal_code: str
    phone: str
    # Relative number of customers who call this store home.
    weight: int
    town: Town
    # Customers who live around the city, a short drive from the store.
    nearby: tuple[Town, ...]


STORES = (
    DemoStore(
        "ams",
        "Loyalist Amsterdam",
        "Kalverstraat 112",
        "1012 PK",
        "+31205302040",
        26,
        Town(
            "Amsterdam",
            "Noord-Holland",
            (1011, 1109),
            _words(
                "Prinsengracht, Overtoom, Van Baerlestraat, Ferdinand Bolstraat, "
                "Javastraat, Bilderdijkstraat, Haarlemmerdijk, Czaar Peterstraat"
            ),
        ),
        (
            Town("Amstelveen", "Noord-Holland", (1181, 1189), _words("Rembrandtweg")),
            Town("Zaandam", "Noord-Holland", (1501, 1509), _words("Westzijde")),
            Town("Haarlem", "Noord-Holland", (2011, 2037), _words("Zijlweg, Kruisweg")),
        ),
    ),
    DemoStore(
        "rtm",
        "Loyalist Rotterdam",
        "Lijnbaan 45",
        "3012 EL",
        "+31104112233",
        20,
        Town(
            "Rotterdam",
            "Zuid-Holland",
            (3011, 3089),
            _words(
                "Witte de Withstraat, Nieuwe Binnenweg, Oudedijk, Kralingse Plaslaan, "
                "Beijerlandselaan, Bergweg, Meent"
            ),
        ),
        (
            Town("Schiedam", "Zuid-Holland", (3111, 3125), _words("Broersvest")),
            Town("Capelle aan den IJssel", "Zuid-Holland", (2901, 2909), ("Slotlaan",)),
            Town("Barendrecht", "Zuid-Holland", (2991, 2994), ("Middenbaan",)),
        ),
    ),
    DemoStore(
        "utr",
        "Loyalist Utrecht",
        "Oudegracht 150",
        "3511 AZ",
        "+31302314455",
        16,
        Town(
            "Utrecht",
            "Utrecht",
            (3511, 3585),
            _words(
                "Biltstraat, Amsterdamsestraatweg, Twijnstraat, Kanaalstraat, "
                "Burgemeester Reigerstraat, Nachtegaalstraat"
            ),
        ),
        (
            Town("Nieuwegein", "Utrecht", (3431, 3439), _words("Dorpsstraat")),
            Town(
                "Zeist",
                "Utrecht",
                (3701, 3709),
                _words("Slotlaan, Laan van Vollenhove"),
            ),
            Town(
                "Amersfoort", "Utrecht", (3811, 3829), _words("Langestraat, Leusderweg")
            ),
        ),
    ),
    DemoStore(
        "dhg",
        "Loyalist Den Haag",
        "Spuistraat 30",
        "2511 BE",
        "+31703467788",
        18,
        Town(
            "Den Haag",
            "Zuid-Holland",
            (2491, 2597),
            _words(
                "Frederik Hendriklaan, Weimarstraat, Laan van Meerdervoort, "
                "Prinsestraat, Fahrenheitstraat, Theresiastraat"
            ),
        ),
        (
            Town(
                "Rijswijk", "Zuid-Holland", (2281, 2289), _words("Herenstraat, Haagweg")
            ),
            Town("Leiden", "Zuid-Holland", (2311, 2334), _words("Breestraat")),
            Town(
                "Delft", "Zuid-Holland", (2611, 2629), _words("Oude Delft, Voorstraat")
            ),
        ),
    ),
    DemoStore(
        "ehv",
        "Loyalist Eindhoven",
        "Demer 21",
        "5611 AS",
        "+31402445566",
        11,
        Town(
            "Eindhoven",
            "Noord-Brabant",
            (5611, 5658),
            _words("Stratumseind, Kruisstraat, Woenselse Markt, Hoogstraat, Boschdijk"),
        ),
        (
            Town("Veldhoven", "Noord-Brabant", (5501, 5509), _words("Kapelstraat")),
            Town("Helmond", "Noord-Brabant", (5701, 5709), _words("Markt, Kerkstraat")),
            Town("Best", "Noord-Brabant", (5681, 5684), _words("Hoofdstraat")),
        ),
    ),
    DemoStore(
        "grq",
        "Loyalist Groningen",
        "Herestraat 60",
        "9711 LM",
        "+31503118899",
        9,
        Town(
            "Groningen",
            "Groningen",
            (9711, 9747),
            _words(
                "Oosterstraat, Folkingestraat, Nieuwe Ebbingestraat, Korreweg, "
                "Paterswoldseweg"
            ),
        ),
        (
            Town("Haren", "Groningen", (9751, 9752), _words("Rijksstraatweg")),
            Town("Assen", "Drenthe", (9401, 9409), _words("Kerkstraat, Oranjestraat")),
            Town("Hoogezand", "Groningen", (9601, 9611), _words("Hoofdstraat")),
        ),
    ),
)

FIRST_NAMES = {
    "f": _words(
        "Anna, Emma, Julia, Sophie, Lotte, Sanne, Eva, Lisa, Fleur, Iris, Noor, Sara, "
        "Laura, Femke, Anouk, Maud, Esther, Linda, Marloes, Ingrid, Petra, Yasmina, "
        "Fatima, Elif, Mirjam, Karin, Charlotte, Roos, Tessa, Nina"
    ),
    "m": _words(
        "Daan, Sem, Lucas, Levi, Finn, Milan, Thomas, Jesse, Bram, Ruben, Tim, Lars, "
        "Niels, Joost, Pieter, Jeroen, Martijn, Sander, Bas, Koen, Wouter, Mohamed, "
        "Yusuf, Emre, Hans, Gerard, Willem, Jan, Stijn, Mark"
    ),
    "x": _words("Alex, Sam, Robin, Kim, Charlie, Noa, Jip, Luca, Quinn, Sasha"),
}

LAST_NAMES = _words(
    "de Jong, Jansen, de Vries, van den Berg, van Dijk, Bakker, Janssen, Visser, Smit, "
    "Meijer, de Boer, Mulder, de Groot, Bos, Vos, Peters, Hendriks, van Leeuwen, "
    "Dekker, Brouwer, de Wit, Dijkstra, Smits, de Graaf, van der Meer, van der Linden, "
    "Kok, Jacobs, de Haan, Vermeulen, van den Heuvel, van der Veen, van den Broek, "
    "de Bruijn, van der Heijden, Schouten, van Beek, Willems, van Vliet, van de Ven, "
    "Hoekstra, Maas, Verhoeven, Koster, van Dam, Prins, Blom, Huisman, Yilmaz, "
    "El Amrani, Kaya, Nguyen, Bennani, Pranoto, Tahiri"
)


@dataclass(frozen=True)
class DemoCategory:
    slug: str
    name: str
    sku_prefix: str
    # Lowest and highest list price, in euros.
    prices: tuple[int, int]
    products: tuple[str, ...]


CATEGORIES = (
    DemoCategory(
        "shoes",
        "Shoes",
        "SHO",
        (39, 189),
        _words(
            "Leather ankle boots, Suede chelsea boots, Running shoes, Canvas sneakers, "
            "Leather sneakers, Loafers, Ballet flats, Hiking boots, Rain boots, "
            "Sandals, Slippers, Derby shoes, Pumps, Trail runners, Court sneakers"
        ),
    ),
    DemoCategory(
        "clothing",
        "Clothing",
        "CLO",
        (15, 249),
        _words(
            "Wool coat, Rain jacket, Denim jeans, Chinos, Linen shirt, Oxford shirt, "
            "Merino jumper, Cotton T-shirt, Hoodie, Summer dress, Knitted cardigan, "
            "Blazer, Puffer jacket, Pleated skirt, Joggers, Trench coat"
        ),
    ),
    DemoCategory(
        "bags",
        "Bags",
        "BAG",
        (19, 229),
        _words(
            "Leather tote, Canvas shopper, Backpack, Laptop bag, Crossbody bag, "
            "Weekend bag, Belt bag, Clutch, Gym bag, Cabin suitcase, Card holder, "
            "Leather wallet, Document case"
        ),
    ),
    DemoCategory(
        "accessories",
        "Accessories",
        "ACC",
        (5, 79),
        _words(
            "Wool scarf, Leather belt, Beanie, Leather gloves, Sunglasses, Umbrella, "
            "Ankle socks, Baseball cap, Silk scarf, Watch strap, Keyring, Hair clips, "
            "Earrings, Bracelet, Phone case"
        ),
    ),
    DemoCategory(
        "kids",
        "Kids",
        "KID",
        (7, 89),
        _words(
            "Kids' sneakers, Kids' rain jacket, School backpack, Kids' pyjamas, "
            "Baby romper, Kids' rain boots, Kids' hoodie, Lunch box, Kids' socks, "
            "Soft toy, Kids' swimsuit, Kids' winter coat, Baby blanket, Drinking bottle"
        ),
    ),
    DemoCategory(
        "home",
        "Home",
        "HOM",
        (6, 129),
        _words(
            "Scented candle, Linen napkins, Ceramic mug, Throw blanket, "
            "Cushion cover, Glass vase, Towel set, Bed linen set, Doormat, "
            "Storage basket, Table lamp, Picture frame, Coffee table book, "
            "Espresso cups"
        ),
    ),
    DemoCategory(
        "outdoor",
        "Outdoor",
        "OUT",
        (9, 199),
        _words(
            "Camping chair, Picnic blanket, Insulated bottle, Headlamp, "
            "Trekking poles, Softshell jacket, Rain poncho, Daypack, Sleeping bag, "
            "Thermos flask, Compass, Bike bag, Hammock"
        ),
    ),
    DemoCategory(
        "beauty",
        "Beauty",
        "BEA",
        (4, 69),
        _words(
            "Hand cream, Lip balm, Face serum, Shampoo, Body lotion, Eau de toilette, "
            "Nail polish, Face mask, Shower gel, Sunscreen SPF 30, Mascara, Gift set, "
            "Beard oil"
        ),
    ),
)

# Interests a shop learns from sign-up forms and purchases, as (slug, name).
TAGS = (
    ("b2b", "B2B"),
    ("sneakers", "Sneakers"),
    ("sustainability", "Sustainability"),
    ("running", "Running"),
    ("fashion", "Fashion"),
    ("kids", "Kids"),
    ("home-decor", "Home decor"),
    ("beauty", "Beauty"),
    ("outdoor", "Outdoor"),
    ("sale-alerts", "Sale alerts"),
    ("gift-ideas", "Gift ideas"),
)

CONSENT_WORDING = {
    "email": (
        "Yes, send me news and offers from Loyalist by email. I can unsubscribe at "
        "any time."
    ),
    "sms": "Yes, send me offers and order updates from Loyalist by text message.",
    "social_ads": (
        "Yes, Loyalist may use my email address to show me relevant adverts on social "
        "media."
    ),
}
WITHDRAWAL_WORDING = "Unsubscribed with the link in a Loyalist email."


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    barcode: str
    name: str
    category: str
    price_cents: int
    cost_cents: int
    stock_level: int


def products_build(rng: random.Random) -> list[DemoProduct]:
    """The catalogue: about 110 products, priced between their category's bounds."""
    products = []
    for number, category in enumerate(CATEGORIES):
        low, high = category.prices
        for position, name in enumerate(category.products, start=1):
            # Log-uniform, so every category has many cheap and a few dear items.
            euros = int(low * (high / low) ** rng.random())
            price = euros * 100 + rng.choice((95, 99, 50, 0))
            body = f"87123{number:02d}{position:05d}"
            products.append(
                DemoProduct(
                    sku=f"{category.sku_prefix}-{position:03d}",
                    barcode=body + ean.calc_check_digit(body),
                    name=name,
                    category=category.slug,
                    price_cents=price,
                    cost_cents=int(price * rng.uniform(0.35, 0.55)),
                    stock_level=rng.randint(10, 250),
                )
            )
    return products
