"""English word lists for the synthetic sentence generator (:mod:`seqspeech.data.corpora.synth`).

Written out by hand (no downloads), grouped by what a template may put in a slot, so that generated sentences
read naturally: things one can buy or carry, places one can go to, people, animals, topics, events.
Inflected forms (plurals, verb tenses, comparatives) are derived by :func:`plural`, :func:`verb_forms` and
:func:`comparative` with explicit tables for the irregular ones.
"""

from __future__ import annotations

from functools import cache


def _words(text: str) -> tuple[str, ...]:
    """Split a block of ``|``- or newline-separated entries (an entry may hold spaces)."""
    return tuple(w.strip() for w in text.replace("\n", "|").split("|") if w.strip())


FIRST_NAMES = _words("""
James|Mary|John|Patricia|Robert|Jennifer|Michael|Linda|William|Elizabeth|David|Barbara|Richard|Susan|Joseph|
Jessica|Thomas|Sarah|Charles|Karen|Daniel|Nancy|Matthew|Lisa|Anthony|Betty|Mark|Margaret|Donald|Sandra|Steven|
Ashley|Paul|Kimberly|Andrew|Emily|Joshua|Donna|Kenneth|Michelle|Kevin|Dorothy|Brian|Carol|George|Amanda|Edward|
Melissa|Ronald|Deborah|Timothy|Stephanie|Jason|Rebecca|Jeffrey|Sharon|Ryan|Laura|Jacob|Cynthia|Gary|Kathleen|
Nicholas|Amy|Eric|Shirley|Jonathan|Angela|Stephen|Helen|Larry|Anna|Justin|Brenda|Scott|Pamela|Brandon|Nicole|
Benjamin|Emma|Samuel|Samantha|Gregory|Katherine|Frank|Christine|Alexander|Debra|Raymond|Rachel|Patrick|
Catherine|Jack|Carolyn|Dennis|Janet|Jerry|Ruth|Tyler|Maria|Aaron|Heather|Jose|Diane|Adam|Virginia|Henry|Julie|
Nathan|Joyce|Douglas|Victoria|Zachary|Olivia|Peter|Kelly|Kyle|Christina|Walter|Lauren|Ethan|Joan|Jeremy|
Evelyn|Harold|Judith|Keith|Megan|Christian|Cheryl|Roger|Andrea|Noah|Hannah|Gerald|Martha|Carl|Jacqueline|
Terry|Frances|Sean|Gloria|Austin|Ann|Arthur|Teresa|Lawrence|Kathryn|Jesse|Sara|Dylan|Janice|Bryan|Jean|Joe|
Alice|Jordan|Madison|Billy|Doris|Bruce|Abigail|Albert|Julia|Willie|Judy|Gabriel|Grace|Logan|Denise|Alan|
Amber|Juan|Marilyn|Wayne|Beverly|Roy|Danielle|Ralph|Theresa|Randy|Sophia|Eugene|Marie|Vincent|Diana|Russell|
Brittany|Elijah|Natalie|Louis|Isabella|Bobby|Charlotte|Philip|Rose|Johnny|Alexis|Oliver|Lucy|Oscar|Chloe|
Leo|Zoe|Hugo|Mia|Felix|Ella|Max|Ruby|Theo|Ivy|Owen|Nora|Simon|Clara|Victor|Stella|Isaac|Violet|Miles|Hazel|
Caleb|Iris|Martin|Leah|Ian|Naomi|Dean|Eva|Colin|Alice|Neil|Fiona|Graham|Holly|Stuart|Molly|Gordon|Paula
""")

SURNAMES = _words("""
Smith|Johnson|Williams|Brown|Jones|Miller|Davis|Wilson|Anderson|Taylor|Thomas|Moore|Martin|Jackson|Thompson|
White|Harris|Clark|Lewis|Robinson|Walker|Young|Allen|King|Wright|Scott|Hill|Green|Adams|Baker|Nelson|Carter|
Mitchell|Roberts|Turner|Phillips|Campbell|Parker|Evans|Edwards|Collins|Stewart|Morris|Rogers|Reed|Cook|Morgan|
Bell|Murphy|Bailey|Cooper|Richardson|Cox|Howard|Ward|Peterson|Gray|James|Watson|Brooks|Kelly|Sanders|Price|
Bennett|Wood|Barnes|Ross|Henderson|Coleman|Jenkins|Perry|Powell|Long|Patterson|Hughes|Washington|Butler|
Simmons|Foster|Bryant|Alexander|Russell|Griffin|Hayes|Myers|Ford|Hamilton|Graham|Sullivan|Wallace|Woods|Cole|
West|Jordan|Owens|Reynolds|Fisher|Ellis|Harrison|Gibson|McDonald|Marshall|Wells|Hunt|Palmer|Black|Holmes|
Stone|Warren|Dixon|Burns|Gordon|Shaw|Hunter|Spencer|Mason|Porter|Fletcher|Lawson|Chapman|Fox|Hudson|Knight|
Lane|Lee|Chen|Wong|Kim|Park|Singh|Patel|Khan|Nguyen|Lopez|Garcia|Martinez|Rivera|Cruz|Morales|Ortiz|Ramos
""")

CITIES = _words("""
London|Paris|Berlin|Madrid|Rome|Vienna|Prague|Warsaw|Lisbon|Dublin|Edinburgh|Glasgow|Manchester|Liverpool|
Birmingham|Bristol|Leeds|Oxford|Cambridge|Brighton|Cardiff|Belfast|Amsterdam|Brussels|Copenhagen|Stockholm|
Oslo|Helsinki|Athens|Budapest|Munich|Hamburg|Frankfurt|Zurich|Geneva|Milan|Venice|Florence|Naples|Barcelona|
Seville|Valencia|Porto|Lyon|Marseille|Nice|New York|Boston|Chicago|Denver|Seattle|Portland|San Francisco|
Los Angeles|San Diego|Houston|Dallas|Austin|Phoenix|Atlanta|Miami|Orlando|Nashville|Memphis|New Orleans|
Detroit|Cleveland|Pittsburgh|Philadelphia|Baltimore|Washington|Minneapolis|Milwaukee|Kansas City|Saint Louis|
Salt Lake City|Las Vegas|Honolulu|Anchorage|Toronto|Montreal|Vancouver|Ottawa|Calgary|Quebec|Mexico City|
Havana|Lima|Bogota|Santiago|Buenos Aires|Montevideo|Quito|Caracas|Rio de Janeiro|Sao Paulo|Cairo|Nairobi|
Lagos|Accra|Cape Town|Johannesburg|Casablanca|Tunis|Istanbul|Ankara|Jerusalem|Dubai|Tehran|Mumbai|Delhi|
Bangalore|Chennai|Kolkata|Karachi|Dhaka|Bangkok|Hanoi|Singapore|Jakarta|Manila|Beijing|Shanghai|Hong Kong|
Seoul|Tokyo|Osaka|Kyoto|Sydney|Melbourne|Brisbane|Perth|Adelaide|Auckland|Wellington|Reykjavik|Kyiv|Riga|
Tallinn|Vilnius|Krakow|Bucharest|Sofia|Belgrade|Zagreb|Salzburg|Bordeaux|Toulouse|Bilbao|Granada|Malaga
""")

COUNTRIES = _words("""
England|Scotland|Wales|Ireland|France|Germany|Spain|Portugal|Italy|Greece|Austria|Switzerland|Belgium|Norway|
Sweden|Finland|Denmark|Iceland|Poland|Hungary|Romania|Bulgaria|Croatia|Serbia|Ukraine|Turkey|Egypt|Morocco|
Kenya|Nigeria|Ghana|Ethiopia|Tanzania|South Africa|India|Pakistan|Nepal|China|Japan|Korea|Vietnam|Thailand|
Malaysia|Indonesia|the Philippines|Australia|New Zealand|Canada|Mexico|Brazil|Argentina|Chile|Peru|Colombia|
Venezuela|Ecuador|Bolivia|Uruguay|Paraguay|Cuba|Jamaica|Panama|Costa Rica|Guatemala|Honduras|Iran|Iraq|
Israel|Jordan|Lebanon|Russia|Mongolia|Estonia|Latvia|Lithuania|Slovakia|Slovenia|the Netherlands|Scandinavia
""")

STREETS = _words("""
Main|Oak|Pine|Maple|Cedar|Elm|Park|Lake|Hill|High|Church|Mill|River|Bridge|Station|Market|Spring|Garden|
Chestnut|Walnut|Washington|Lincoln|Jefferson|Franklin|Madison|Harbor|Forest|Meadow|Sunset|Willow
""")

PROFESSIONS = _words("""
teacher|doctor|nurse|lawyer|engineer|farmer|baker|butcher|carpenter|plumber|electrician|mechanic|pilot|
driver|waiter|waitress|chef|cook|cashier|clerk|manager|secretary|accountant|banker|dentist|surgeon|scientist|
chemist|biologist|physicist|architect|designer|painter|sculptor|musician|singer|dancer|actor|writer|poet|
journalist|reporter|photographer|editor|librarian|professor|student|coach|referee|player|soldier|sailor|
officer|detective|judge|priest|gardener|fisherman|tailor|barber|shopkeeper|salesman|guide|tourist|traveler|
neighbor|stranger|visitor|customer|passenger|patient|volunteer|programmer|director|mayor|firefighter|
police officer|vet|pharmacist|translator|builder|miner|janitor|receptionist|babysitter|landlord|tenant
""")

RELATIVES = _words("""
mother|father|sister|brother|aunt|uncle|cousin|grandmother|grandfather|daughter|son|wife|husband|niece|nephew|
friend|boss|roommate|classmate|colleague|partner|girlfriend|boyfriend|grandson|granddaughter
""")

ANIMALS = _words("""
dog|cat|horse|cow|pig|sheep|goat|chicken|duck|goose|rabbit|mouse|rat|hamster|parrot|pigeon|crow|owl|eagle|
hawk|swan|penguin|seagull|sparrow|robin|fox|wolf|bear|deer|moose|lion|tiger|leopard|cheetah|elephant|giraffe|
zebra|hippo|rhino|monkey|gorilla|kangaroo|koala|camel|donkey|squirrel|hedgehog|beaver|otter|badger|bat|frog|
toad|snake|lizard|turtle|crocodile|shark|whale|dolphin|seal|octopus|crab|lobster|salmon|trout|bee|wasp|ant|
butterfly|spider|beetle|snail|worm|mosquito|puppy|kitten|pony|lamb|calf|bull
""")

# Things one can buy, find, carry, lose, fix or give (count nouns).
OBJECTS = _words("""
book|pen|pencil|notebook|letter|envelope|stamp|map|ticket|passport|wallet|purse|bag|backpack|suitcase|box|
basket|bottle|jar|cup|mug|glass|plate|bowl|spoon|fork|knife|pan|pot|kettle|teapot|toaster|oven|fridge|
freezer|microwave|dishwasher|sink|towel|blanket|pillow|sheet|mattress|bed|chair|table|desk|sofa|couch|lamp|
mirror|clock|watch|calendar|picture|painting|photo|poster|frame|vase|candle|rug|carpet|curtain|window|door|
key|lock|drawer|shelf|cupboard|closet|hanger|umbrella|coat|jacket|sweater|shirt|blouse|dress|skirt|suit|tie|
scarf|hat|cap|glove|sock|shoe|boot|sandal|belt|ring|necklace|bracelet|earring|button|zipper|pocket|phone|
laptop|computer|tablet|keyboard|screen|monitor|printer|camera|radio|television|speaker|headphone|charger|
cable|battery|remote|light bulb|flashlight|ladder|hammer|nail|screw|screwdriver|wrench|saw|drill|shovel|rake|
bucket|hose|brush|broom|mop|sponge|soap|toothbrush|comb|razor|bicycle|helmet|skateboard|ball|kite|doll|toy|
puzzle|game|guitar|piano|violin|drum|trumpet|flute|harp|microphone|album|record|magazine|newspaper|novel|
dictionary|diary|folder|file|document|report|form|contract|receipt|invoice|card|postcard|gift|present|parcel|
package|sandwich|cake|pie|cookie|apple|banana|orange|lemon|pear|peach|plum|melon|pineapple|tomato|potato|
onion|carrot|cucumber|pepper|egg|sausage|burger|pizza|pumpkin|candy bar|flower|rose|tulip|plant|tree|seed|
leaf|branch|stone|rock|shell|feather|rope|string|chain|wire|tent|sleeping bag|compass|lantern|boat|canoe|
kayak|sail|anchor|paddle|engine|wheel|tire|mirror|seat|trophy|medal|coin|banknote|badge|flag|sign|statue|
fountain|bench|fence|gate|wall|roof|chimney|stair|brick|tile|pipe|tap|heater|fan|blender|recipe|menu|bill|
list|note|message|email|password|question|answer|idea|plan|story|joke|song|poem|speech|lesson|exam|test|
essay|project|drawing|sketch|model|design|invitation|schedule|timetable|ticket stub|coupon|voucher|sticker|
label|tag|ribbon|balloon|mask|costume|uniform|apron|glove box|toolbox|lunchbox|mailbox|notebook cover|
eraser|ruler|stapler|calculator|globe|telescope|microscope|magnet|thermometer|scale|bandage|pill|vitamin|
kettle lid|candlestick|teacup|saucer|tray|napkin|tablecloth|jug|pitcher|barrel|crate|cart|trolley|wagon|
sled|ski|snowboard|surfboard|racket|bat|net|goal|whistle|stopwatch|backpack strap|water bottle|lunch bag
""")

# Items in a shopping list, as written in the list (plural or mass).
GROCERIES = _words("""
eggs|milk|bread|butter|cheese|yogurt|cream|flour|sugar|salt|pepper|rice|pasta|noodles|beans|lentils|oats|
cereal|honey|jam|coffee|tea|juice|water|soda|wine|beer|apples|bananas|oranges|lemons|limes|grapes|pears|
peaches|plums|cherries|strawberries|blueberries|raspberries|melons|tomatoes|potatoes|onions|garlic|carrots|
cucumbers|peppers|lettuce|spinach|cabbage|broccoli|cauliflower|celery|mushrooms|peas|corn|pumpkins|avocados|
chicken|beef|pork|lamb|bacon|ham|sausages|fish|salmon|tuna|shrimp|tofu|nuts|almonds|walnuts|peanuts|raisins|
crackers|cookies|chips|chocolate|candy|popcorn|olive oil|vinegar|ketchup|mustard|mayonnaise|soup|spices|
cinnamon|ginger|basil|parsley|mint|napkins|paper towels|soap|shampoo|toothpaste|batteries|candles|matches|
trash bags|dish soap|laundry detergent|sponges|tissues|light bulbs|envelopes|stamps|pencils|flowers|ice cream
""")

# Places one can go to (with "the").
BUILDINGS = _words("""
library|museum|gallery|theater|cinema|stadium|gym|pool|park|zoo|beach|harbor|port|station|airport|bus stop|
hospital|clinic|pharmacy|bank|post office|police station|fire station|city hall|courthouse|school|college|
university|office|factory|warehouse|farm|barn|market|supermarket|bakery|butcher's|bookshop|flower shop|
hardware store|pet shop|shoe shop|toy store|mall|restaurant|cafe|bar|pub|hotel|hostel|motel|church|cathedral|
temple|mosque|castle|palace|tower|bridge|tunnel|garage|parking lot|gas station|car wash|laundromat|kitchen|
garden|backyard|basement|attic|balcony|hallway|lobby|classroom|laboratory|studio|concert hall|opera house|
town square|playground|campsite|forest|lake|river|mountain|valley|island|desert|village|farmhouse|cottage|
lighthouse|market square|train station|ferry terminal|dentist's office|town hall|swimming pool|ice rink|
bowling alley|golf course|tennis court|football field|science center|aquarium|botanical garden|waterfall
""")

TOPICS = _words("""
history|geography|mathematics|physics|chemistry|biology|astronomy|geology|economics|politics|philosophy|
psychology|literature|poetry|music|art|architecture|medicine|law|engineering|computer science|statistics|
grammar|spelling|cooking|gardening|photography|painting|sculpture|dancing|singing|acting|fashion|design|
marketing|advertising|finance|banking|insurance|agriculture|fishing|hunting|sailing|climbing|cycling|
running|swimming|skiing|tennis|football|basketball|baseball|golf|hockey|chess|poker|knitting|pottery|
woodwork|carpentry|nutrition|fitness|yoga|meditation|religion|mythology|archaeology|anthropology|sociology|
linguistics|translation|journalism|education|healthcare|technology|electricity|energy|climate|weather|
pollution|recycling|transport|traffic|tourism|travel|trade|industry|business|management|leadership|safety|
security|privacy|justice|freedom|democracy|peace|war|friendship|love|happiness|success|failure|courage|
patience|honesty|kindness|memory|sleep|health|exercise|food|wine|coffee|tea|chocolate|space travel|oceans|
volcanoes|earthquakes|dinosaurs|birds|insects|planets|robots|languages|accents|opera|jazz|rock music
""")

EVENTS = _words("""
meeting|party|wedding|funeral|concert|festival|conference|lecture|seminar|workshop|class|lesson|interview|
appointment|exam|game|match|race|tournament|competition|show|play|performance|exhibition|fair|parade|picnic|
barbecue|dinner|lunch|breakfast|trip|journey|flight|voyage|holiday|vacation|birthday party|reunion|ceremony|
rehearsal|training session|job interview|press conference|book club|dance class|tea party|sale|auction|
presentation|debate|celebration|housewarming|tour|hike|walk|swim|ride|drive|visit
""")

VEHICLES = _words("""
train|bus|tram|ferry|plane|taxi|coach|subway|boat|ship|van|truck|car|bike|helicopter
""")

# Activities after "likes to" / "went to".
ACTIVITIES = _words("""
play tennis|play chess|play the piano|play the guitar|play football|go swimming|go fishing|go shopping|
go hiking|go skiing|go sailing|go camping|go cycling|go dancing|go running|read novels|write letters|
paint pictures|bake bread|cook dinner|watch films|watch the news|listen to music|listen to the radio|
visit museums|take photos|grow vegetables|walk the dog|feed the birds|ride horses|climb mountains|
learn languages|sing in a choir|do puzzles|do yoga|collect stamps|collect coins|fly kites|build models|
knit sweaters|study the stars|travel abroad|sleep late|get up early|drink coffee|eat out|work from home|
tell jokes|tell stories|draw maps|fix old radios|repair bicycles|make jam|pick berries|bird watch
""")

# Adjectives for things (attributive and predicative). Comparatives come from :func:`comparative`.
ADJECTIVES = _words("""
big|small|large|tiny|huge|long|short|tall|wide|narrow|thick|thin|heavy|light|deep|shallow|high|low|old|new|
young|ancient|modern|fresh|stale|clean|dirty|dry|wet|hot|cold|warm|cool|soft|hard|smooth|rough|sharp|blunt|
bright|dark|pale|shiny|dull|loud|quiet|noisy|silent|fast|slow|quick|cheap|expensive|rich|poor|full|empty|
strong|weak|safe|dangerous|easy|difficult|simple|complex|strange|normal|common|rare|famous|unknown|popular|
beautiful|ugly|pretty|lovely|nice|pleasant|horrible|terrible|wonderful|excellent|perfect|awful|fine|great|
useful|useless|broken|round|square|flat|curved|straight|crooked|sweet|sour|bitter|salty|spicy|tasty|
delicious|red|blue|green|yellow|orange|purple|pink|brown|black|white|grey|golden|silver|wooden|plastic|
metal|glass|paper|leather|woolen|cotton|silk|stone|brick|rusty|dusty|muddy|sandy|sticky|slippery|fragile|
solid|hollow|tidy|messy|neat|plain|fancy|elegant|colorful|striped|spotted|bright red|dark blue|light green|
enormous|gigantic|miniature|little|massive|compact|portable|electric|digital|automatic|manual|handmade|
homemade|foreign|local|national|public|private|official|secret|special|ordinary|unusual|typical|familiar|
important|necessary|optional|main|extra|spare|missing|lost|stolen|borrowed|second hand|brand new|vintage|
antique|valuable|precious|worthless|fragrant|smelly|noisy|comfortable|uncomfortable|convenient|reliable|
clever|curious|careful|careless|serious|funny|boring|exciting|interesting|amazing|surprising|confusing|
frightening|relaxing|tiring|healthy|fancy|crowded|empty|peaceful|busy|lively|sunny|cloudy|rainy|windy|foggy|
snowy|stormy|humid|frozen|icy|bare|leafy|wild|tame|gentle|fierce|brave|calm|proud|shy|friendly|lazy|clumsy|
hungry|thirsty|sleepy|tired|angry|happy|sad|nervous|excited|worried|bored|lonely|polite|rude|generous|kind|
honest|patient|quiet|cheerful|grumpy|wise|silly|smart|talented|famous|handsome|elderly|cheeky
""")

# Adjectives that describe people (for "X is very ...").
PERSON_ADJECTIVES = _words("""
happy|sad|tired|hungry|thirsty|angry|nervous|excited|worried|bored|lonely|polite|rude|generous|kind|honest|
patient|cheerful|grumpy|wise|silly|smart|talented|brave|calm|proud|shy|friendly|lazy|clumsy|busy|careful|
careless|serious|funny|curious|clever|confident|modest|ambitious|quiet|loud|sleepy|sick|healthy|lucky|
ready|late|early|sure|glad|sorry|surprised|upset|jealous|grateful|famous|strong|weak|young|old|tall|short
""")

ADVERBS = _words("""
quickly|slowly|carefully|quietly|loudly|happily|sadly|gently|easily|badly|well|early|late|suddenly|finally|
usually|often|sometimes|rarely|never|always|already|still|almost|nearly|really|very|quite|rather|too|
perhaps|probably|certainly|clearly|simply|exactly|immediately|soon|later|again|together|alone|outside|
inside|upstairs|downstairs|abroad|nearby|everywhere|politely|patiently|angrily|proudly|nervously|calmly|
bravely|secretly|openly|honestly|kindly|neatly|silently|eagerly|warmly|firmly|briefly|barely|hardly|
recently|lately|yesterday|today|tomorrow|tonight|twice|once
""")

# Verbs taking a thing as object.
VERBS_THING = _words("""
buy|sell|find|lose|bring|take|carry|hold|drop|break|fix|repair|clean|wash|dry|paint|draw|build|make|cook|bake|
open|close|lock|unlock|fill|empty|move|lift|push|pull|throw|catch|kick|hide|keep|borrow|lend|return|send|
deliver|order|pack|unpack|wrap|open|check|count|measure|weigh|test|sort|fold|cut|sew|burn|heat|cool|freeze|
boil|fry|grill|taste|smell|touch|sign|print|scan|copy|read|write|mark|label|hang|polish|replace|recycle|
share|steal|search|pick up|put away|throw away|give away|hand in|wipe|scrub|stir|peel|slice|chop|mix|pour|
plant|water|grow|sweep|decorate|design|inspect|examine|carve|sharpen|load|unload|rent|install|choose|want|
need|like|love|hate|prefer|notice|remember|forget|describe|explain|discover|collect|donate|deliver|test
""")

# Verbs taking a person as object.
VERBS_PERSON = _words("""
call|meet|visit|help|thank|invite|phone|email|text|greet|hug|kiss|follow|chase|watch|warn|teach|tell|ask|
answer|pay|hire|fire|interview|thank|trust|blame|forgive|remind|encourage|surprise|annoy|amaze|impress|
disturb|wake|feed|join|miss|recognize|understand|believe|avoid|ignore|drive|guide|support|congratulate
""")

# Verbs used without an object.
VERBS_INTRANS = _words("""
arrive|leave|sleep|laugh|smile|cry|wait|rest|work|play|swim|run|walk|dance|sing|shout|whisper|jump|climb|
sit|stand|fall|travel|return|relax|study|practice|complain|agree|disagree|hesitate|listen|worry|shop|cook|
win|fail|succeed|improve|recover|retire|move|stay|breathe|sneeze|cough|yawn|snore|wander|hurry|slip|
apologize|vote|pray|argue|celebrate|exercise|train|fight|smile|wave|knock
""")

VERBS_TOPIC = _words("""
study|discuss|teach|learn|research|explain|love|hate|enjoy|understand|write about|talk about|read about|
dream about|care about|think about|argue about|complain about|joke about|lecture on
""")

# Irregular verbs: base -> (past, past participle).
IRREGULAR_VERBS = {
    "buy": ("bought", "bought"), "sell": ("sold", "sold"), "find": ("found", "found"), "lose": ("lost", "lost"),
    "bring": ("brought", "brought"), "take": ("took", "taken"), "hold": ("held", "held"),
    "break": ("broke", "broken"), "build": ("built", "built"), "make": ("made", "made"),
    "throw": ("threw", "thrown"), "catch": ("caught", "caught"), "hide": ("hid", "hidden"),
    "keep": ("kept", "kept"), "lend": ("lent", "lent"), "send": ("sent", "sent"), "cut": ("cut", "cut"),
    "sew": ("sewed", "sewn"), "burn": ("burned", "burned"), "freeze": ("froze", "frozen"),
    "read": ("read", "read"), "write": ("wrote", "written"), "hang": ("hung", "hung"),
    "steal": ("stole", "stolen"), "grow": ("grew", "grown"), "sweep": ("swept", "swept"),
    "choose": ("chose", "chosen"), "forget": ("forgot", "forgotten"), "meet": ("met", "met"),
    "teach": ("taught", "taught"), "tell": ("told", "told"), "pay": ("paid", "paid"),
    "forgive": ("forgave", "forgiven"), "wake": ("woke", "woken"), "feed": ("fed", "fed"),
    "understand": ("understood", "understood"), "drive": ("drove", "driven"), "leave": ("left", "left"),
    "sleep": ("slept", "slept"), "swim": ("swam", "swum"), "run": ("ran", "run"), "sing": ("sang", "sung"),
    "sit": ("sat", "sat"), "stand": ("stood", "stood"), "fall": ("fell", "fallen"), "win": ("won", "won"),
    "fight": ("fought", "fought"), "draw": ("drew", "drawn"), "think": ("thought", "thought"),
    "go": ("went", "gone"), "see": ("saw", "seen"), "give": ("gave", "given"), "get": ("got", "got"),
    "put": ("put", "put"), "learn": ("learned", "learned"), "dream": ("dreamed", "dreamed"),
    "do": ("did", "done"), "say": ("said", "said"), "eat": ("ate", "eaten"), "drink": ("drank", "drunk"),
    "speak": ("spoke", "spoken"), "begin": ("began", "begun"), "fly": ("flew", "flown"),
    "ride": ("rode", "ridden"), "hear": ("heard", "heard"), "know": ("knew", "known"),
    "come": ("came", "come"), "shut": ("shut", "shut"), "spend": ("spent", "spent"),
    "lie": ("lay", "lain"), "have": ("had", "had"), "feel": ("felt", "felt"), "tear": ("tore", "torn"),
}  # fmt: skip

# Verbs that double their final consonant (stop -> stopped, stopping).
_DOUBLING = frozenset(
    "stop drop plan shop jog hug grab chat rob admit prefer regret refer permit swim run sit win cut begin "
    "put get shut chop stir scan wrap hug knit skip trip fit hit rub nod beg".split()
)
_IRREGULAR_PLURALS = {
    "man": "men", "woman": "women", "child": "children", "person": "people", "mouse": "mice", "goose": "geese",
    "foot": "feet", "tooth": "teeth", "sheep": "sheep", "deer": "deer", "fish": "fish", "salmon": "salmon",
    "trout": "trout", "moose": "moose", "knife": "knives", "leaf": "leaves", "shelf": "shelves",
    "wife": "wives", "wolf": "wolves", "calf": "calves", "potato": "potatoes", "tomato": "tomatoes",
    "hero": "heroes", "piano": "pianos", "photo": "photos", "radio": "radios", "video": "videos",
    "police officer": "police officers", "fisherman": "fishermen", "salesman": "salesmen",
    "butcher's": "butcher's", "dentist's office": "dentist's offices", "series": "series",
}  # fmt: skip
_IRREGULAR_COMPARATIVES = {"good": "better", "bad": "worse", "far": "farther", "little": "smaller",
                           "fun": "more fun"}  # fmt: skip
_VOWELS = "aeiou"


@cache
def plural(noun: str) -> str:
    """English plural of a (possibly multi-word) noun: ``box`` -> ``boxes``, ``city`` -> ``cities``."""
    if noun in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[noun]
    head, _, last = noun.rpartition(" ")
    prefix = head + " " if head else ""
    if last in _IRREGULAR_PLURALS:
        return prefix + _IRREGULAR_PLURALS[last]
    if last.endswith(("s", "sh", "ch", "x", "z")):
        return prefix + last + "es"
    if last.endswith("y") and last[-2:-1] not in _VOWELS:
        return prefix + last[:-1] + "ies"
    return prefix + last + "s"


def _split_particle(verb: str) -> tuple[str, str]:
    base, _, rest = verb.partition(" ")
    return base, (" " + rest if rest else "")


@cache
def verb_forms(verb: str) -> dict[str, str]:
    """``{"base", "third", "past", "participle", "ing"}`` of a verb, particles kept (``pick up`` ->
    ``picked up``)."""
    base, particle = _split_particle(verb)
    if base == "be":
        raise ValueError("verb_forms: 'be' is not supported")
    if base in ("do", "go"):
        third = base + "es"
    elif base == "have":
        third = "has"
    elif base.endswith(("s", "sh", "ch", "x", "z", "o")):
        third = base + "es"
    elif base.endswith("y") and base[-2:-1] not in _VOWELS:
        third = base[:-1] + "ies"
    else:
        third = base + "s"
    doubled = base + base[-1] if base in _DOUBLING else base
    if base in IRREGULAR_VERBS:
        past, participle = IRREGULAR_VERBS[base]
    else:
        if base.endswith("e"):
            past = base + "d"
        elif base.endswith("y") and base[-2:-1] not in _VOWELS:
            past = base[:-1] + "ied"
        else:
            past = doubled + "ed"
        participle = past
    if base.endswith("ie"):
        ing = base[:-2] + "ying"
    elif base.endswith("e") and not base.endswith(("ee", "ye", "oe")) and base != "be":
        ing = base[:-1] + "ing"
    else:
        ing = doubled + "ing"
    return {k: v + particle for k, v in
            {"base": base, "third": third, "past": past, "participle": participle, "ing": ing}.items()}  # fmt: skip


@cache
def comparative(adjective: str) -> str:
    """``big`` -> ``bigger``, ``happy`` -> ``happier``, ``expensive`` -> ``more expensive``."""
    if adjective in _IRREGULAR_COMPARATIVES:
        return _IRREGULAR_COMPARATIVES[adjective]
    if " " in adjective or adjective.endswith(("ed", "ing", "ful", "ous", "ive", "al", "ic", "en", "less")):
        return "more " + adjective
    vowel_groups = sum(1 for i, ch in enumerate(adjective) if ch in _VOWELS + "y" and
                       (i == 0 or adjective[i - 1] not in _VOWELS + "y"))  # fmt: skip
    if adjective.endswith("e") and vowel_groups > 1:
        vowel_groups -= 1  # silent final e: "large", "strange"
    if adjective.endswith("y") and vowel_groups == 2:
        return adjective[:-1] + "ier"
    if vowel_groups > 1:
        return "more " + adjective
    if adjective.endswith("e"):
        return adjective + "r"
    if (len(adjective) >= 3 and adjective[-1] not in _VOWELS + "wxy" and adjective[-2] in _VOWELS
            and adjective[-3] not in _VOWELS):
        return adjective + adjective[-1] + "er"
    return adjective + "er"


def article(phrase: str) -> str:
    """``a`` or ``an`` for the phrase that follows (by its first letter; ``an hour`` is not handled)."""
    word = phrase.split()[0].lower()
    if word.startswith(("uni", "use", "eu", "one")):
        return "a"
    return "an" if word[0] in _VOWELS else "a"
