"""Vocabulary of the merchant generator: brands with their statement spellings, local-name templates, places.

Brand variants are how the same merchant shows up on real statements (abbreviated, truncated, with
a processor prefix); templates make local merchants a model must generalise to from their words.
"""

__all__ = ["CATEGORIES", "BRANDS", "TEMPLATES", "NEW_BRANDS", "CITIES", "PREFIXES", "NAMES", "LEGAL", "AMOUNT", "HOURS"]

CATEGORIES = ["digital", "entertainment", "fuel", "groceries", "pharmacy", "restaurants", "retail",
              "transport", "travel", "utilities"]

BRANDS = {
    "groceries": [["WHOLEFDS MKT", "WHOLE FOODS MARKET", "WFM"], ["TRADER JOE'S", "TRADER JOE S"], ["SAFEWAY"],
                  ["KROGER", "KROGER FUEL CTR"], ["ALDI", "ALDI SUED"], ["LIDL", "LIDL DIENSTL"], ["TESCO STORES", "TESCO EXPRESS"],
                  ["SAINSBURYS S/MKTS", "JS ONLINE GROCERY"], ["ICA NARA", "ICA SUPERMARKET", "ICA KVANTUM"], ["COOP KONSUM", "COOP"],
                  ["CARREFOUR MARKET", "CARREFOUR CITY"], ["PUBLIX SUPER MKT"], ["COSTCO WHSE", "COSTCO WHOLESALE"], ["REWE MARKT"],
                  ["WALMART SUPERCENTER", "WAL-MART #"]],
    "restaurants": [["MCDONALD'S", "MCDONALDS F", "MCD"], ["STARBUCKS STORE", "STARBUCKS"], ["CHIPOTLE ONLINE", "CHIPOTLE"],
                    ["SUBWAY"], ["PIZZA HUT"], ["DOMINO'S", "DOMINOS PIZZA"], ["NANDOS"], ["PRET A MANGER", "PRET"],
                    ["MAX HAMBURGARE", "MAX BURGERS"], ["SHAKE SHACK"], ["DUNKIN #", "DUNKIN DONUTS"], ["BURGER KING", "BK #"],
                    ["UBER *EATS", "UBER EATS"], ["DOORDASH*", "DD DOORDASH"], ["DELIVEROO"]],
    "fuel": [["SHELL OIL", "SHELL SERVICE STN", "SHELL"], ["EXXONMOBIL", "EXXON"], ["BP#", "BP CONNECT"], ["CHEVRON"],
             ["CIRCLE K", "CIRCLEK"], ["TEXACO"], ["VALERO"], ["ARCO", "ARCO AMPM"], ["SUNOCO"], ["PREEM"], ["ST1"],
             ["OKQ8", "OK Q8"], ["ARAL TANKSTELLE", "ARAL"], ["ESSO"], ["TOTALENERGIES", "TOTAL ACCESS"]],
    "travel": [["DELTA AIR", "DELTA AIR LINES"], ["UNITED AIRLINES", "UNITED 016"], ["RYANAIR"], ["SAS AIRLINES", "SAS SCANDINAVIAN"],
               ["LUFTHANSA"], ["MARRIOTT", "MARRIOTT HOTELS"], ["HILTON HOTELS", "HILTON GARDEN INN"], ["AIRBNB", "AIRBNB * HM"],
               ["BOOKING.COM", "HOTEL AT BOOKING.COM"], ["EXPEDIA", "EXPEDIA 72"], ["HERTZ RENT-A-CAR", "HERTZ"], ["AVIS RENT A CAR"],
               ["EASYJET"], ["NORWEGIAN AIR"], ["SCANDIC HOTELS"]],
    "digital": [["NETFLIX.COM"], ["SPOTIFY", "SPOTIFY USA", "SPOTIFY AB"], ["APPLE.COM/BILL"], ["GOOGLE *YOUTUBE", "GOOGLE *GOOGLE STORAGE"],
                ["STEAMGAMES.COM", "STEAM PURCHASE"], ["MICROSOFT*XBOX", "MSFT *MICROSOFT 365"], ["ADOBE *CREATIVE CLD", "ADOBE"],
                ["DROPBOX"], ["OPENAI *CHATGPT SUBSCR", "OPENAI"], ["PLAYSTATION NETWORK", "SONY PLAYSTATION"], ["DISNEY PLUS"],
                ["AUDIBLE"], ["PRIME VIDEO", "AMAZON PRIME*"], ["HBO MAX"], ["PATREON* MEMBERSHIP"]],
    "pharmacy": [["CVS/PHARMACY", "CVS PHARMACY"], ["WALGREENS", "WAG"], ["BOOTS", "BOOTS THE CHEMIST"], ["RITE AID"],
                 ["APOTEK HJARTAT"], ["APOTEKET AB", "APOTEKET"], ["DUANE READE"], ["KRONANS APOTEK"], ["DM DROGERIE", "DM-DROGERIE MARKT"],
                 ["LLOYDS PHARMACY"], ["SUPERDRUG"], ["ROSSMANN"]],
    "retail": [["TARGET", "TARGET.COM"], ["H&M", "H & M"], ["ZARA"], ["IKEA"], ["BEST BUY"], ["HOME DEPOT", "THE HOME DEPOT"],
               ["AMZN MKTP US", "AMAZON.COM*", "AMZN MKTP"], ["EBAY O*"], ["UNIQLO"], ["CLAS OHLSON"], ["ELGIGANTEN"],
               ["PRIMARK"], ["MEDIA MARKT"], ["DECATHLON"], ["ETSY.COM"]],
    "transport": [["UBER *TRIP", "UBER TRIP", "UBER BV"], ["LYFT *RIDE", "LYFT"], ["MTA*NYCT PAYGO", "MTA NYCT"],
                  ["TFL TRAVEL CH", "TFL.GOV.UK/CP"], ["SL SE", "SL ACCESS"], ["BOLT.EU/O", "BOLT"], ["EASYPARK"],
                  ["BART-CLIPPER", "CLIPPER"], ["AMTRAK", "AMTRAK .COM"], ["SJ AB", "SJ"], ["DB VERTRIEB", "DB BAHN"],
                  ["PARKMOBILE"], ["LIME*RIDE"], ["VOI TECHNOLOGY"]],
    "utilities": [["VERIZON WRLS", "VZWRLSS*APOCC"], ["AT&T*BILL PAYMENT", "ATT*BILL"], ["COMCAST", "COMCAST XFINITY"],
                  ["T-MOBILE", "TMOBILE*AUTO PAY"], ["VATTENFALL"], ["EON ENERGIE", "E.ON"], ["TELIA", "TELIA SVERIGE"],
                  ["CON ED", "CONED BILL"], ["PG&E", "PGANDE WEB ONLINE"], ["BRITISH GAS"], ["THAMES WATER"], ["TELE2"],
                  ["VODAFONE"], ["SPECTRUM"], ["OCTOPUS ENERGY"]],
    "entertainment": [["AMC THEATRES", "AMC"], ["CINEMA CITY"], ["TICKETMASTER", "TM *TICKETMASTER"], ["LIVE NATION"],
                      ["SF BIO", "FILMSTADEN"], ["REGAL CINEMAS"], ["ODEON CINEMAS"], ["DAVE & BUSTERS"], ["BOWLMOR"],
                      ["EVENTBRITE", "EB *EVENTBRITE"], ["SIX FLAGS"], ["LISEBERG"], ["TOPGOLF"], ["CINEWORLD"]],
}

# Local merchants: `{n}` is a name, `{c}` a city word. Some words are shared across categories on purpose.
TEMPLATES = {
    "groceries": ["{n} MARKET", "{n} FRESH FOODS", "{n} DELI & GROCERY", "{n} FOOD STORE", "{c} FARMERS MKT", "{n} SUPERMARKET",
                  "{n} MINIMART", "{n} ORGANICS"],
    "restaurants": ["{n} PIZZERIA", "CAFE {n}", "{n} SUSHI BAR", "{n} BISTRO", "{n}'S DINER", "TRATTORIA {n}", "{n} TAQUERIA",
                    "{n} KITCHEN", "{n} BURGERS", "{n} THAI", "{n} BAKERY CAFE", "THE {n} PUB"],
    "fuel": ["{n} GAS", "{n} FUEL STOP", "{n} PETROLEUM", "{c} GAS STATION", "{n} TRUCK STOP", "{n} EV CHARGING"],
    "travel": ["HOTEL {n}", "{n} INN", "{n} TRAVEL AGENCY", "{c} AIRPORT HOTEL", "{n} HOSTEL", "{n} RESORT", "{n} CAR RENTAL"],
    "digital": ["{n} APP", "{n}.IO", "{n} SOFTWARE", "{n} CLOUD", "{n} GAMES ONLINE", "{n} SUBSCRIPTION", "{n}.COM DIGITAL"],
    "pharmacy": ["{n} PHARMACY", "{n} APOTEK", "{n} DRUG STORE", "{n} CHEMIST", "{c} APOTHECARY", "{n} RX"],
    "retail": ["{n} BOUTIQUE", "{n} HARDWARE", "{n} BOOKS", "{n} OUTLET", "{n} SHOES", "{n} ELECTRONICS", "{n} HOME STORE",
               "{n} CLOTHING"],
    "transport": ["{c} TAXI", "{n} CAB CO", "{n} PARKING GARAGE", "{c} TRANSIT", "{n} BIKE SHARE", "{c} PARKING"],
    "utilities": ["{c} WATER DEPT", "{n} ELECTRIC", "{n} TELECOM", "{n} ENERGY", "{c} GAS & POWER", "{n} BROADBAND",
                  "{n} MOBILE BILL"],
    "entertainment": ["{n} CINEMA", "{n} ARCADE", "{n} THEATER", "{n} BOWLING", "{c} ZOO", "{n} MUSEUM", "{n} KARAOKE",
                      "{n} CONCERT HALL"],
}

# Merchants that appear only in the drifted batch (new brands, a new processor).
NEW_BRANDS = {
    "retail": [["TEMU.COM", "TEMU"], ["SHEIN", "SHEIN.COM"], ["KLARNA*ZALANDO", "ZALANDO SE"]],
    "digital": [["ANTHROPIC", "CLAUDE.AI SUBSCRIPTION"], ["MIDJOURNEY INC"], ["NOTION LABS"], ["CANVA* PRO"]],
    "transport": [["TIER MOBILITY"], ["DOTT SCOOTERS"]],
    "restaurants": [["WOLT"], ["FOODORA"], ["JUST EAT"]],
    "travel": [["FLIXBUS"], ["VRBO"]],
}

NAMES = ["ROSSI", "MARIA", "GOLDEN", "BLUE DOOR", "SUNRISE", "OAK", "LUNA", "NORTH STAR", "HAPPY", "EMERALD", "LINDQVIST",
         "MUELLER", "DUPONT", "SAKURA", "BELLA", "RIVERSIDE", "OLD TOWN", "MAPLE", "CORNER", "SILVER", "PACIFIC", "NORDIC",
         "KING", "BROOKLYN", "ATLAS", "PEARL", "CEDAR", "VIKING", "ROYAL", "LUCKY", "GREEN LEAF", "URBAN", "HARBOR",
         "MOUNTAIN", "FALCON", "AURORA", "PHOENIX", "TASTY", "SMITH", "JOHANSSON", "NGUYEN", "GARCIA", "PATEL", "KOWALSKI",
         "EVERGREEN", "SUMMIT", "BAYVIEW", "LOTUS", "COPPER", "DAISY"]

LEGAL = ["LLC", "INC", "& CO", "AB", "GMBH", "LTD", "& SONS", "HB", "SARL", "CORP"]

CITIES = {
    "US": ["NEW YORK NY", "SAN FRANCISCO CA", "SEATTLE WA", "AUSTIN TX", "CHICAGO IL", "BOSTON MA", "DENVER CO", "MIAMI FL"],
    "GB": ["LONDON GB", "MANCHESTER GB", "BRISTOL GB", "EDINBURGH GB"],
    "SE": ["STOCKHOLM SE", "GOTEBORG SE", "MALMO SE", "UPPSALA SE"],
    "DE": ["BERLIN DE", "MUENCHEN DE", "HAMBURG DE", "KOELN DE"],
    "FR": ["PARIS FR", "LYON FR", "NICE FR"],
}

PREFIXES = {"local": ["SQ *", "TST* ", "SP * ", "ZETTLE_*", "IZ *", "PY *", "SUMUP  *"],
            "any": ["PAYPAL *", "POS ", "CHECKCARD ", "VISA DEBIT ", "CRV*", "CKO*"]}

# Lognormal (median, sigma) of amounts in the local currency unit, and typical hours, per category.
AMOUNT = {"groceries": (45, 0.7), "restaurants": (22, 0.6), "fuel": (48, 0.4), "travel": (310, 0.9), "digital": (12, 0.6),
          "pharmacy": (19, 0.7), "retail": (55, 0.9), "transport": (16, 0.7), "utilities": (75, 0.5),
          "entertainment": (34, 0.6)}
HOURS = {"groceries": (17, 3), "restaurants": (13, 4), "fuel": (12, 5), "travel": (11, 5), "digital": (3, 6),
         "pharmacy": (14, 3), "retail": (15, 3), "transport": (12, 6), "utilities": (2, 3), "entertainment": (20, 3)}
