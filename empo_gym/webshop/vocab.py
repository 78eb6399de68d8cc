"""Vocabulary of the generated catalogue: categories, product types, brands, attributes, options.

The tables mirror WebShop's structure (five categories, Amazon-style ``A › B › C`` category
paths, search queries, attributes such as "gluten free" or "machine wash", options such as
colour, size, flavour and count). They are plain data so that the catalogue's content hash
covers them: editing a table invalidates every cached catalogue built from it.

Example:
    >>> sorted(CATEGORIES)
    ['beauty', 'electronics', 'fashion', 'food', 'furniture']
    >>> PRODUCT_TYPES[0].category in CATEGORIES
    True
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProductType:
    """One product type of the generated catalogue.

    Attributes:
        category: One of :data:`CATEGORIES`.
        name: The type as written in titles and instructions ("snack bar").
        nouns: The product-type nouns of ``name`` (used by the reward's noun overlap).
        query: The search query the product "was scraped with" (WebShop's ``query`` field).
        path: Category path ``A › B › C``.
        attributes: Type-specific attributes (category-wide ones are added).
        options: Option slots as ``(option name, pool name)`` pairs, see :data:`OPTION_POOLS`.
        price: Price range in dollars ``(low, high)``.
    """

    category: str
    name: str
    nouns: tuple[str, ...]
    query: str
    path: str
    attributes: tuple[str, ...]
    options: tuple[tuple[str, str], ...]
    price: tuple[float, float]


CATEGORIES: dict[str, dict[str, tuple[str, ...]]] = {
    "beauty": {
        "brands": (
            "Lumière Botanics", "Pure Harbor", "Velvet Fern", "Oak & Honey", "Sunkissed Labs",
            "Mira Beauty", "Silk Meadow", "Glow Theory", "Coral Bay", "Nordic Bloom",
        ),
        "adjectives": (
            "natural", "nourishing", "gentle", "hydrating", "professional", "premium",
            "lightweight", "soothing", "travel size", "luxury",
        ),
        "attributes": (
            "cruelty free", "paraben free", "long lasting", "easy to use", "sensitive skin",
            "natural ingredients", "dermatologist tested", "travel size",
        ),
    },
    "fashion": {
        "brands": (
            "Northfield", "Urban Loom", "Cedar & Pine", "Blue Harbor", "Kestrel",
            "Marlowe", "Trail Fox", "Hanover Row", "Solace", "Ridgeline",
        ),
        "adjectives": (
            "classic", "slim fit", "casual", "breathable", "soft", "stretchy", "vintage",
            "comfortable", "stylish", "relaxed fit",
        ),
        "attributes": (
            "machine wash", "hand wash", "quick drying", "moisture wicking", "button closure",
            "elastic waistband", "long sleeve", "short sleeve", "polyester cotton",
        ),
    },
    "food": {
        "brands": (
            "Green Acre", "Harvest Table", "Little Orchard", "Mountain Mill", "Sunny Pantry",
            "Bee Happy", "Golden Grove", "Wild Kettle", "Prairie Co", "Tasty Trail",
        ),
        "adjectives": (
            "organic", "crunchy", "healthy", "delicious", "protein", "premium", "keto",
            "family size", "artisan", "classic",
        ),
        "attributes": (
            "gluten free", "non gmo", "low calorie", "sugar free", "dairy free", "keto friendly",
            "high protein", "plant based", "individually wrapped",
        ),
    },
    "furniture": {
        "brands": (
            "Homestead", "Birch Lane Co", "Loft & Nook", "Timberline", "Casa Verde",
            "Modway Studio", "Hearth House", "Nordlund", "Willow Creek", "Ashby",
        ),
        "adjectives": (
            "modern", "rustic", "mid century", "industrial", "minimalist", "farmhouse",
            "contemporary", "sturdy", "compact", "scandinavian",
        ),
        "attributes": (
            "easy assembly", "solid wood", "space saving", "living room", "storage space",
            "metal frame", "high density foam", "non slip",
        ),
    },
    "electronics": {
        "brands": (
            "Voltix", "Sonara", "Pixelon", "Aurex", "Nexwave", "Quanta", "Brightcore",
            "Zentro", "Helix Audio", "Orbitek",
        ),
        "adjectives": (
            "wireless", "portable", "compact", "rechargeable", "smart", "ultra slim",
            "high performance", "waterproof", "heavy duty", "ergonomic",
        ),
        "attributes": (
            "fast charging", "noise cancelling", "high definition", "easy to use",
            "usb port", "long battery life", "plug and play", "aluminum alloy", "hands free",
        ),
    },
}

#: Option value pools (lower-case, as WebShop's loader stores them). Pools used by one product
#: type never share a value, so an option click names its option unambiguously.
OPTION_POOLS: dict[str, tuple[str, ...]] = {
    "apparel_color": (
        "black", "white", "navy blue", "heather grey", "olive green", "burgundy", "khaki",
        "light pink", "charcoal", "royal blue", "black forest", "dark brown",
    ),
    "apparel_size": ("x-small", "small", "medium", "large", "x-large", "xx-large", "3x-large"),
    "shoe_size": ("6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "11", "12"),
    "beauty_color": (
        "nude", "rose", "coral", "berry", "mauve", "ruby red", "peach", "plum", "caramel",
    ),
    "scent": (
        "lavender", "vanilla", "eucalyptus mint", "citrus", "unscented", "coconut",
        "rose garden", "sandalwood",
    ),
    "volume": ("1 fl oz (pack of 1)", "3.4 fl oz", "6.76 fl oz", "8 ounce", "16 fl oz", "2 pack"),
    "flavor": (
        "chocolate", "peanut butter", "vanilla almond", "sea salt", "honey oat", "strawberry",
        "salted caramel", "original", "cinnamon", "dark cherry",
    ),
    "count": (
        "12 count (pack of 1)", "24 count", "6 pack", "pack of 3", "1 pound (pack of 2)",
        "8 ounce (pack of 4)", "36 count",
    ),
    "furniture_color": (
        "espresso", "walnut", "natural oak", "white wash", "black metal", "grey fabric",
        "rustic brown", "teal velvet", "cream linen",
    ),
    "furniture_size": (
        "twin", "full", "queen", "king", "24 inch", "30 inch", "47.2 x 23.6 inch",
        "60 x 30 inch",
    ),
    "electronics_color": (
        "matte black", "silver", "space gray", "white", "midnight blue", "rose gold", "red",
    ),
    "electronics_style": (
        "standard", "pro", "with case", "bundle", "2 pack", "64gb", "128gb", "256gb",
    ),
    "material": ("cotton", "linen", "fleece", "denim", "wool blend", "polyester"),
}

_F = "Clothing, Shoes & Jewelry"
_B = "Beauty & Personal Care"
_G = "Grocery & Gourmet Food"
_H = "Home & Kitchen › Furniture"
_E = "Electronics"

PRODUCT_TYPES: tuple[ProductType, ...] = (
    # beauty
    ProductType("beauty", "lipstick", ("lipstick",), "lipstick", f"{_B} › Makeup › Lips",
                ("matte finish", "moisturizing"), (("color", "beauty_color"),), (6, 28)),
    ProductType("beauty", "face moisturizer", ("face", "moisturizer"), "face moisturizer",
                f"{_B} › Skin Care › Face", ("anti aging", "hyaluronic acid", "oil free"),
                (("size", "volume"),), (9, 60)),
    ProductType("beauty", "shampoo", ("shampoo",), "shampoo", f"{_B} › Hair Care › Shampoo",
                ("sulfate free", "dry hair", "color treated"), (("scent", "scent"),
                                                                ("size", "volume")), (7, 35)),
    ProductType("beauty", "body wash", ("body", "wash"), "body wash",
                f"{_B} › Personal Care › Bath & Bathing", ("tea tree", "dry skin"),
                (("scent", "scent"), ("size", "volume")), (5, 25)),
    ProductType("beauty", "nail polish", ("nail", "polish"), "nail polish",
                f"{_B} › Foot, Hand & Nail Care › Nail Polish", ("quick dry", "non toxic"),
                (("color", "beauty_color"),), (4, 18)),
    ProductType("beauty", "deodorant", ("deodorant",), "deodorant",
                f"{_B} › Personal Care › Deodorants", ("aluminum free", "sensitive skin"),
                (("scent", "scent"),), (5, 20)),
    ProductType("beauty", "hair dryer", ("hair", "dryer"), "hair dryer",
                f"{_B} › Hair Care › Styling Tools", ("ionic technology", "fast drying"),
                (("color", "electronics_color"),), (20, 120)),
    # fashion
    ProductType("fashion", "t-shirt", ("t", "shirt"), "men's t-shirts",
                f"{_F} › Men › Clothing › Shirts", ("crew neck", "cotton spandex"),
                (("color", "apparel_color"), ("size", "apparel_size")), (9, 35)),
    ProductType("fashion", "hoodie", ("hoodie",), "women's hoodies",
                f"{_F} › Women › Clothing › Fashion Hoodies", ("drawstring hood", "fleece lined"),
                (("color", "apparel_color"), ("size", "apparel_size")), (18, 60)),
    ProductType("fashion", "running shoe", ("running", "shoe"), "men's running shoes",
                f"{_F} › Men › Shoes › Athletic", ("rubber sole", "arch support"),
                (("color", "apparel_color"), ("size", "shoe_size")), (30, 140)),
    ProductType("fashion", "yoga pants", ("yoga", "pants"), "yoga pants",
                f"{_F} › Women › Clothing › Active", ("high waist", "tummy control"),
                (("color", "apparel_color"), ("size", "apparel_size")), (15, 50)),
    ProductType("fashion", "dress", ("dress",), "women's dresses",
                f"{_F} › Women › Clothing › Dresses", ("v neck", "pocket design"),
                (("color", "apparel_color"), ("size", "apparel_size")), (20, 80)),
    ProductType("fashion", "sneaker", ("sneaker",), "women's sneakers",
                f"{_F} › Women › Shoes › Fashion Sneakers", ("memory foam", "lace up"),
                (("color", "apparel_color"), ("size", "shoe_size")), (25, 110)),
    ProductType("fashion", "jacket", ("jacket",), "men's jackets",
                f"{_F} › Men › Clothing › Jackets & Coats", ("zipper closure", "water resistant"),
                (("color", "apparel_color"), ("size", "apparel_size"),
                 ("material type", "material")), (35, 180)),
    # food
    ProductType("food", "snack bar", ("snack", "bar"), "snack bars",
                f"{_G} › Snacks & Sweets › Snack Bars", ("whole grain", "nut free"),
                (("flavor name", "flavor"), ("size", "count")), (5, 40)),
    ProductType("food", "protein powder", ("protein", "powder"), "protein powder",
                f"{_G} › Beverages › Powdered Drink Mixes", ("whey protein", "low carb"),
                (("flavor name", "flavor"), ("size", "count")), (20, 70)),
    ProductType("food", "granola", ("granola",), "granola cereal",
                f"{_G} › Breakfast Foods › Cereals", ("whole grain", "natural flavors"),
                (("flavor name", "flavor"), ("size", "count")), (4, 25)),
    ProductType("food", "coffee beans", ("coffee", "beans"), "whole bean coffee",
                f"{_G} › Beverages › Coffee", ("fair trade", "medium roast"),
                (("size", "count"),), (8, 45)),
    ProductType("food", "herbal tea", ("herbal", "tea"), "herbal tea bags",
                f"{_G} › Beverages › Tea", ("caffeine free", "usda organic"),
                (("flavor name", "flavor"), ("size", "count")), (4, 22)),
    ProductType("food", "beef jerky", ("beef", "jerky"), "beef jerky",
                f"{_G} › Meat & Seafood › Jerky", ("grass fed", "ready to eat"),
                (("flavor name", "flavor"), ("size", "count")), (7, 40)),
    ProductType("food", "cookies", ("cookies",), "cookies",
                f"{_G} › Snacks & Sweets › Cookies", ("baked fresh", "nut free"),
                (("flavor name", "flavor"), ("size", "count")), (4, 30)),
    # furniture
    ProductType("furniture", "coffee table", ("coffee", "table"), "coffee table",
                f"{_H} › Living Room Furniture › Tables", ("tempered glass", "storage shelf"),
                (("color", "furniture_color"), ("size", "furniture_size")), (60, 350)),
    ProductType("furniture", "bookshelf", ("bookshelf",), "bookshelf",
                f"{_H} › Home Office Furniture › Bookcases", ("wall mounted", "5 tier"),
                (("color", "furniture_color"),), (40, 250)),
    ProductType("furniture", "office chair", ("office", "chair"), "office chair",
                f"{_H} › Home Office Furniture › Chairs", ("lumbar support", "adjustable height"),
                (("color", "furniture_color"),), (60, 320)),
    ProductType("furniture", "bed frame", ("bed", "frame"), "bed frame",
                f"{_H} › Bedroom Furniture › Beds", ("wood slat support", "no box spring"),
                (("color", "furniture_color"), ("size", "furniture_size")), (90, 480)),
    ProductType("furniture", "bar stool", ("bar", "stool"), "bar stools",
                f"{_H} › Kitchen & Dining Room Furniture › Stools", ("swivel seat", "footrest"),
                (("color", "furniture_color"), ("size", "furniture_size")), (40, 220)),
    ProductType("furniture", "tv stand", ("tv", "stand"), "tv stand",
                f"{_H} › Living Room Furniture › TV Stands", ("cable management", "open shelf"),
                (("color", "furniture_color"), ("size", "furniture_size")), (50, 300)),
    ProductType("furniture", "ottoman", ("ottoman",), "storage ottoman",
                f"{_H} › Living Room Furniture › Ottomans", ("faux leather", "foldable"),
                (("color", "furniture_color"),), (25, 150)),
    # electronics
    ProductType("electronics", "bluetooth speaker", ("bluetooth", "speaker"),
                "bluetooth speaker", f"{_E} › Portable Audio & Video › Portable Speakers",
                ("stereo sound", "built in microphone"), (("color", "electronics_color"),),
                (15, 150)),
    ProductType("electronics", "wireless earbuds", ("earbuds",), "wireless earbuds",
                f"{_E} › Headphones › Earbud Headphones", ("touch control", "sweat resistant"),
                (("color", "electronics_color"), ("style", "electronics_style")), (18, 200)),
    ProductType("electronics", "usb c charger", ("usb", "charger"), "usb c charger",
                f"{_E} › Computers & Accessories › Chargers", ("power delivery", "dual port"),
                (("color", "electronics_color"), ("style", "electronics_style")), (9, 60)),
    ProductType("electronics", "hdmi cable", ("hdmi", "cable"), "hdmi cable",
                f"{_E} › Accessories & Supplies › Cables", ("gold plated", "4k resolution"),
                (("style", "electronics_style"),), (6, 30)),
    ProductType("electronics", "gaming mouse", ("gaming", "mouse"), "gaming mouse",
                f"{_E} › Computers & Accessories › Mice", ("rgb backlit", "programmable buttons"),
                (("color", "electronics_color"),), (12, 90)),
    ProductType("electronics", "security camera", ("security", "camera"), "security camera",
                f"{_E} › Camera & Photo › Surveillance Cameras", ("night vision",
                                                                  "motion detection"),
                (("style", "electronics_style"),), (25, 200)),
    ProductType("electronics", "tablet case", ("tablet", "case"), "tablet case",
                f"{_E} › Computers & Accessories › Tablet Accessories", ("shockproof",
                                                                         "auto sleep wake"),
                (("color", "electronics_color"),), (8, 45)),
)

#: Sentence templates. Slots: {brand} {type} {adj} {a0} {a1} {a2}; each slot is delimited by
#: non-word characters so that tokens of a rendered text are the tokens of its pieces.
DESCRIPTION_TEMPLATES: tuple[str, ...] = (
    "Meet the {brand} {type}. This {adj} {type} is {a0} and {a1}, made to last and designed "
    "for everyday use at home or on the go.",
    "Our {adj} {type} combines {a0} with {a1}. Every {brand} product is inspected for quality "
    "before it ships.",
    "Looking for a {type} that is {a0}? The {brand} {type} is {adj}, {a1} and {a2}. "
    "Satisfaction guaranteed.",
    "The {type} from {brand}: {adj}, {a0}, {a1}. A thoughtful gift for family and friends.",
)
BULLET_TEMPLATES: tuple[str, ...] = (
    "{A0}: this {type} is {a0}, so you can use it with confidence",
    "{A1} - {adj} design that is {a1} and easy to care for",
    "Great value from {brand}, {a2} and backed by friendly customer service",
    "What you get: one {brand} {type}; {a0}; {a1}",
    "Designed for daily use: {adj} and {a2}",
)
REVIEW_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("Exactly as described", "Love this {type}. It is {a0} just like the listing says."),
    ("Good value", "Solid {type} for the price, would buy from {brand} again."),
    ("Not bad", "The {type} is fine but shipping took a while."),
    ("Five stars", "My second {brand} {type}; {a1} and works great."),
    ("Could be better", "Decent {type}, though I expected it to be more {adj}."),
)
INSTRUCTION_TEMPLATES: tuple[str, ...] = (
    "i need {art} {attrs} {type}",
    "i want {art} {attrs} {type}",
    "i am looking for {art} {attrs} {type}",
    "i'm looking for {art} {type} that is {attrs}",
    "find me {art} {attrs} {type}",
)
HUMAN_INSTRUCTION_TEMPLATES: tuple[str, ...] = (
    "i need {art} {attrs} {type}{opts}",
    "can you find me {art} {attrs} {type}{opts}?",
    "i'm looking for {art} {type} that is {attrs}{opts}",
    "i'd like to buy {art} {attrs} {type}{opts}",
)
