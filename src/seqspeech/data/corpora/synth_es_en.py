"""Spanish-English parallel sentences with the same meaning, for speech translation corpora.

Template pairs over an aligned bilingual lexicon. Spanish agreement is handled: articles, demonstratives and
adjectives agree with the noun in gender and number (``la casa roja`` / ``los libros rojos``); verbs are
conjugated for five persons (yo, tú, él/ella, nosotros, ellos) in the present, preterite and future; the
personal ``a`` contracts with ``el`` (``llamó al médico``). English uses
:func:`~seqspeech.data.corpora.synth_lexicon.verb_forms`. Numbers and times are written as digits on both
sides and verbalised by :func:`~seqspeech.text.verbalize.verbalize_es` / :func:`verbalize_en`; counts avoid
numbers whose Spanish form would need a gendered or shortened ``uno`` (21, 31, ...).

    pairs = generate_parallel(1000, seed=0)   # [("¿Dónde está la llave?", "Where is the key?"), ...]
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ...errors import ConfigError
from ...text.verbalize import verbalize_en, verbalize_es
from . import synth_lexicon as lex

__all__ = ["generate_parallel"]

Rng = random.Random


@dataclass(frozen=True)
class Noun:
    es: str
    gender: str  # "m" or "f"
    en: str

    @property
    def es_plural(self) -> str:
        return _es_plural(self.es)

    @property
    def en_plural(self) -> str:
        return lex.plural(self.en)


_STRIP_ACCENT = str.maketrans("áéíóú", "aeiou")


def _es_plural(word: str) -> str:
    if word[-1] in "aeiouáéó":
        return word + "s"
    if word.endswith("z"):
        return word[:-1] + "ces"
    if word[-2:] in ("ón", "án", "és", "ín"):  # camión -> camiones, inglés -> ingleses
        return word[:-2] + word[-2].translate(_STRIP_ACCENT) + word[-1] + "es"
    return word + "es"


def _nouns(text: str) -> tuple[Noun, ...]:
    out = []
    for line in text.strip().splitlines():
        for entry in line.split(";"):
            if entry.strip():
                es, gender, en = (part.strip() for part in entry.split(":"))
                out.append(Noun(es, gender, en))
    return tuple(out)


# Things (es : gender : en).
THINGS = _nouns("""
libro:m:book; llave:f:key; mesa:f:table; silla:f:chair; casa:f:house; coche:m:car; carta:f:letter; reloj:m:watch;
bolso:m:bag; maleta:f:suitcase; caja:f:box; botella:f:bottle; vaso:m:glass; taza:f:cup; plato:m:plate
cuchara:f:spoon; tenedor:m:fork; cuchillo:m:knife; lámpara:f:lamp; ventana:f:window; puerta:f:door
cama:f:bed; almohada:f:pillow; manta:f:blanket; espejo:m:mirror; cuadro:m:painting; foto:f:photo
mapa:m:map; billete:m:ticket; pasaporte:m:passport; cartera:f:wallet; paraguas:m:umbrella; abrigo:m:coat
chaqueta:f:jacket; camisa:f:shirt; falda:f:skirt; vestido:m:dress; zapato:m:shoe; sombrero:m:hat
bufanda:f:scarf; guante:m:glove; teléfono:m:phone; ordenador:m:computer; cámara:f:camera; radio:f:radio
televisión:f:television; bicicleta:f:bicycle; pelota:f:ball; juguete:m:toy; muñeca:f:doll; guitarra:f:guitar
piano:m:piano; revista:f:magazine; periódico:m:newspaper; novela:f:novel; diccionario:m:dictionary
cuaderno:m:notebook; lápiz:m:pencil; bolígrafo:m:pen; regalo:m:gift; paquete:m:package; sobre:m:envelope
pastel:m:cake; manzana:f:apple; naranja:f:orange; plátano:m:banana; limón:m:lemon; tomate:m:tomato
patata:f:potato; cebolla:f:onion; zanahoria:f:carrot; huevo:m:egg; pan:m:bread; queso:m:cheese
galleta:f:cookie; flor:f:flower; planta:f:plant; árbol:m:tree; piedra:f:stone; cuerda:f:rope
barco:m:boat; camión:m:truck; avión:m:plane; tren:m:train; autobús:m:bus; sofá:m:sofa; alfombra:f:rug
cortina:f:curtain; escalera:f:ladder; martillo:m:hammer; cepillo:m:brush; jabón:m:soap; toalla:f:towel
vela:f:candle; moneda:f:coin; bandera:f:flag; estatua:f:statue; banco:m:bench; ventilador:m:fan
nevera:f:fridge; horno:m:oven; cesta:f:basket; mochila:f:backpack; tienda:f:tent; sartén:f:pan
cuchilla:f:blade; collar:m:necklace; anillo:m:ring; pulsera:f:bracelet; botón:m:button; calcetín:m:sock
""")

ANIMALS = _nouns("""
perro:m:dog; gato:m:cat; caballo:m:horse; vaca:f:cow; cerdo:m:pig; oveja:f:sheep; cabra:f:goat; gallina:f:hen
pato:m:duck; conejo:m:rabbit; ratón:m:mouse; pájaro:m:bird; loro:m:parrot; zorro:m:fox; lobo:m:wolf
oso:m:bear; león:m:lion; tigre:m:tiger; elefante:m:elephant; jirafa:f:giraffe; mono:m:monkey
tortuga:f:turtle; serpiente:f:snake; rana:f:frog; ballena:f:whale; delfín:m:dolphin; abeja:f:bee
mariposa:f:butterfly; araña:f:spider; pez:m:fish
""")

# People with a gender (the English word is the same for both where English has one word).
PEOPLE = _nouns("""
médico:m:doctor; médica:f:doctor; profesor:m:teacher; profesora:f:teacher; abogado:m:lawyer; abogada:f:lawyer
ingeniero:m:engineer; ingeniera:f:engineer; cocinero:m:cook; cocinera:f:cook; camarero:m:waiter
camarera:f:waitress; vecino:m:neighbor; vecina:f:neighbor; estudiante:m:student; niño:m:boy; niña:f:girl
hermano:m:brother; hermana:f:sister; padre:m:father; madre:f:mother; abuelo:m:grandfather
abuela:f:grandmother; tío:m:uncle; tía:f:aunt; primo:m:cousin; prima:f:cousin; amigo:m:friend
amiga:f:friend; hijo:m:son; hija:f:daughter; jefe:m:boss; jefa:f:boss; enfermero:m:nurse
enfermera:f:nurse; cartero:m:mailman; policía:m:police officer; pintor:m:painter; pintora:f:painter
conductor:m:driver; conductora:f:driver; panadero:m:baker; panadera:f:baker; granjero:m:farmer
granjera:f:farmer; cantante:m:singer; actor:m:actor; actriz:f:actress; escritor:m:writer; escritora:f:writer
""")

PLACES = _nouns("""
biblioteca:f:library; museo:m:museum; parque:m:park; playa:f:beach; estación:f:station; aeropuerto:m:airport
hospital:m:hospital; farmacia:f:pharmacy; banco:m:bank; escuela:f:school; universidad:f:university
oficina:f:office; fábrica:f:factory; granja:f:farm; mercado:m:market; supermercado:m:supermarket
panadería:f:bakery; librería:f:bookshop; restaurante:m:restaurant; café:m:cafe; hotel:m:hotel
iglesia:f:church; castillo:m:castle; puente:m:bridge; cocina:f:kitchen; jardín:m:garden; plaza:f:square
teatro:m:theater; cine:m:cinema; estadio:m:stadium; piscina:f:pool; zoológico:m:zoo; montaña:f:mountain
río:m:river; lago:m:lake; bosque:m:forest; isla:f:island; pueblo:m:village; ciudad:f:city; calle:f:street
""")

# Adjectives (masculine singular es : en); feminine and plural forms by rule.
ADJECTIVES = tuple(tuple(e.split(":")) for e in """
rojo:red azul:blue verde:green amarillo:yellow negro:black blanco:white gris:grey marrón:brown rosa:pink
grande:big pequeño:small nuevo:new viejo:old bonito:pretty feo:ugly limpio:clean sucio:dirty barato:cheap
caro:expensive largo:long corto:short alto:tall bajo:low ancho:wide estrecho:narrow pesado:heavy
ligero:light duro:hard blando:soft caliente:hot frío:cold fresco:fresh seco:dry mojado:wet lleno:full
vacío:empty roto:broken moderno:modern antiguo:ancient extraño:strange famoso:famous raro:rare útil:useful
precioso:beautiful enorme:huge rápido:fast lento:slow tranquilo:quiet ruidoso:noisy oscuro:dark
redondo:round cuadrado:square suave:smooth dulce:sweet salado:salty amargo:bitter delicioso:delicious
elegante:elegant sencillo:simple importante:important especial:special perfecto:perfect
""".split())  # fmt: skip
PERSON_ADJECTIVES = tuple(tuple(e.split(":")) for e in """
cansado:tired contento:happy triste:sad enfadado:angry nervioso:nervous aburrido:bored preocupado:worried
ocupado:busy enfermo:sick listo:ready tranquilo:calm sorprendido:surprised
""".split())  # fmt: skip


def _adj(masc: str, gender: str, plural: bool) -> str:
    """Spanish adjective agreeing with a noun: ``rojo`` -> ``roja`` / ``rojos`` / ``rojas``."""
    word = masc
    if gender == "f" and masc.endswith("o"):
        word = masc[:-1] + "a"
    if plural:
        word = _es_plural(word)
    return word


@dataclass(frozen=True)
class Verb:
    es: str  # infinitive
    en: str  # English base form (particles allowed: "look for")
    personal_a: bool = False  # takes "a" before a person object


def _verbs(text: str, personal_a: bool = False) -> tuple[Verb, ...]:
    out = []
    for entry in text.replace("\n", ";").split(";"):
        if entry.strip():
            es, en = (p.strip() for p in entry.split(":"))
            out.append(Verb(es, en, personal_a))
    return tuple(out)


VERBS_THING = _verbs("""
comprar:buy; vender:sell; buscar:look for; limpiar:clean; usar:use; necesitar:need; llevar:carry; mirar:look at
pintar:paint; lavar:wash; preparar:prepare; dibujar:draw; guardar:keep; tomar:take; romper:break
esconder:hide; arreglar:fix; cortar:cut; llenar:fill; olvidar:forget; mandar:send; pagar:pay for; sacar:take out
recibir:receive; escribir:write; cambiar:change; tocar:touch; cuidar:look after; regalar:give away
probar:try; quemar:burn; perder:lose; ordenar:tidy; vigilar:watch; esperar:wait for; cargar:load
""")
VERBS_PERSON = _verbs(
    """llamar:call; visitar:visit; ayudar:help; invitar:invite; saludar:greet; escuchar:listen to
    buscar:look for; esperar:wait for; mirar:look at; abrazar:hug; cuidar:look after; felicitar:congratulate""",
    personal_a=True,
)
VERBS_INTRANS = _verbs("""
trabajar:work; caminar:walk; bailar:dance; cantar:sing; nadar:swim; correr:run; viajar:travel; descansar:rest
estudiar:study; llegar:arrive; esperar:wait; llorar:cry; gritar:shout; hablar:talk; cenar:have dinner
desayunar:have breakfast; cocinar:cook; jugar:play; escuchar:listen; comer:eat; beber:drink; aprender:learn
""")

# Irregular Spanish forms: present, preterite (persons yo, tú, él, nosotros, ellos); future stem.
_IRREGULAR_ES = {
    "tener": (("tengo", "tienes", "tiene", "tenemos", "tienen"), ("tuve", "tuviste", "tuvo", "tuvimos", "tuvieron"),
              "tendr"),
    "querer": (("quiero", "quieres", "quiere", "queremos", "quieren"),
               ("quise", "quisiste", "quiso", "quisimos", "quisieron"), "querr"),
    "ir": (("voy", "vas", "va", "vamos", "van"), ("fui", "fuiste", "fue", "fuimos", "fueron"), "ir"),
    "ser": (("soy", "eres", "es", "somos", "son"), ("fui", "fuiste", "fue", "fuimos", "fueron"), "ser"),
    "estar": (("estoy", "estás", "está", "estamos", "están"),
              ("estuve", "estuviste", "estuvo", "estuvimos", "estuvieron"), "estar"),
    "jugar": (("juego", "juegas", "juega", "jugamos", "juegan"), ("jugué", "jugaste", "jugó", "jugamos", "jugaron"),
              "jugar"),
    "probar": (("pruebo", "pruebas", "prueba", "probamos", "prueban"),
               ("probé", "probaste", "probó", "probamos", "probaron"), "probar"),
    "perder": (("pierdo", "pierdes", "pierde", "perdemos", "pierden"),
               ("perdí", "perdiste", "perdió", "perdimos", "perdieron"), "perder"),
}  # fmt: skip
_PRESENT = {"ar": ("o", "as", "a", "amos", "an"), "er": ("o", "es", "e", "emos", "en"),
            "ir": ("o", "es", "e", "imos", "en")}  # fmt: skip
_PRETERITE = {"ar": ("é", "aste", "ó", "amos", "aron"), "er": ("í", "iste", "ió", "imos", "ieron"),
              "ir": ("í", "iste", "ió", "imos", "ieron")}  # fmt: skip
_FUTURE = ("é", "ás", "á", "emos", "án")
_YO_PRETERITE_SPELLING = {"car": "qué", "gar": "gué", "zar": "cé"}


def conjugate_es(infinitive: str, tense: str, person: int) -> str:
    """Spanish verb form; ``tense`` in ``present``/``past``/``future``; ``person`` 0..4 = yo, tú, él, nosotros,
    ellos."""
    if infinitive in _IRREGULAR_ES:
        present, preterite, future_stem = _IRREGULAR_ES[infinitive]
        if tense == "present":
            return present[person]
        if tense == "past":
            return preterite[person]
        return future_stem + _FUTURE[person]
    stem, ending = infinitive[:-2], infinitive[-2:]
    if tense == "present":
        return stem + _PRESENT[ending][person]
    if tense == "future":
        return infinitive + _FUTURE[person]
    if person == 0 and infinitive[-3:] in _YO_PRETERITE_SPELLING:
        return infinitive[:-3] + _YO_PRETERITE_SPELLING[infinitive[-3:]]
    return stem + _PRETERITE[ending][person]


def conjugate_en(verb: str, tense: str, person: int) -> str:
    forms = lex.verb_forms(verb)
    if tense == "past":
        return forms["past"]
    if tense == "future":
        return "will " + forms["base"]
    return forms["third"] if person == 2 else forms["base"]


_PRONOUNS = (("yo", "I", 0), ("tú", "you", 1), ("él", "he", 2), ("ella", "she", 2), ("nosotros", "we", 3),
             ("ellos", "they", 4), ("ellas", "they", 4))  # fmt: skip
_NAMES = ("María", "Juan", "Ana", "Carlos", "Lucía", "Pedro", "Sofía", "Pablo", "Elena", "Diego", "Laura",
          "Miguel", "Carmen", "Javier", "Isabel", "Daniel", "Marta", "Jorge", "Paula", "Andrés", "Clara", "Luis",
          "Teresa", "Manuel", "Rosa", "Alberto", "Julia", "Sergio", "Irene", "Raúl")  # fmt: skip
_CITIES = (("Madrid", "Madrid"), ("Barcelona", "Barcelona"), ("Sevilla", "Seville"), ("Valencia", "Valencia"),
           ("Londres", "London"), ("París", "Paris"), ("Roma", "Rome"), ("Berlín", "Berlin"), ("Lisboa", "Lisbon"),
           ("Nueva York", "New York"), ("México", "Mexico"), ("Lima", "Lima"), ("Bogotá", "Bogota"),
           ("Buenos Aires", "Buenos Aires"), ("Santiago", "Santiago"), ("Tokio", "Tokyo"), ("Atenas", "Athens"),
           ("Dublín", "Dublin"), ("Viena", "Vienna"), ("Moscú", "Moscow"), ("Toledo", "Toledo"),
           ("Granada", "Granada"), ("Bilbao", "Bilbao"), ("Quito", "Quito"), ("La Habana", "Havana"))  # fmt: skip
_WEEKDAYS = (("lunes", "Monday"), ("martes", "Tuesday"), ("miércoles", "Wednesday"), ("jueves", "Thursday"),
             ("viernes", "Friday"), ("sábado", "Saturday"), ("domingo", "Sunday"))  # fmt: skip
_PAST_TIME = (("ayer", "yesterday"), ("anoche", "last night"), ("la semana pasada", "last week"),
              ("el año pasado", "last year"), ("esta mañana", "this morning"), ("hace dos días", "two days ago"))
_FUTURE_TIME = (("mañana", "tomorrow"), ("la semana que viene", "next week"), ("esta tarde", "this afternoon"),
                ("pronto", "soon"), ("el mes que viene", "next month"), ("esta noche", "tonight"))
_HABIT_TIME = (("todos los días", "every day"), ("a menudo", "often"), ("los fines de semana", "on weekends"),
               ("cada mañana", "every morning"), ("a veces", "sometimes"))  # fmt: skip
_ARTICLES = {  # (kind, gender, plural) -> (es, en)
    ("def", "m", False): "el", ("def", "f", False): "la", ("def", "m", True): "los", ("def", "f", True): "las",
    ("indef", "m", False): "un", ("indef", "f", False): "una", ("indef", "m", True): "unos",
    ("indef", "f", True): "unas", ("this", "m", False): "este", ("this", "f", False): "esta",
    ("this", "m", True): "estos", ("this", "f", True): "estas", ("my", "m", False): "mi",
    ("my", "f", False): "mi", ("my", "m", True): "mis", ("my", "f", True): "mis",
    ("our", "m", False): "nuestro", ("our", "f", False): "nuestra", ("our", "m", True): "nuestros",
    ("our", "f", True): "nuestras",
}  # fmt: skip
_ARTICLES_EN = {("def", False): "the", ("def", True): "the", ("indef", True): "some", ("this", False): "this",
                ("this", True): "these", ("my", False): "my", ("my", True): "my", ("our", False): "our",
                ("our", True): "our"}  # fmt: skip


def _pick(rng: Rng, items: tuple) -> object:
    return items[rng.randrange(len(items))]


def _np(rng: Rng, nouns: tuple[Noun, ...], *, plural: bool | None = None, kind: str | None = None,
        adjective: bool | None = None) -> tuple[str, str, str, bool]:  # fmt: skip
    """A noun phrase ``(es, en, gender, plural)``: ``la mesa roja`` / ``the red table``."""
    noun: Noun = _pick(rng, nouns)  # type: ignore[assignment]
    plural = rng.random() < 0.3 if plural is None else plural
    kind = kind or _pick(rng, ("def", "def", "indef", "this", "my", "our"))  # type: ignore[assignment]
    es_noun = noun.es_plural if plural else noun.es
    en_noun = noun.en_plural if plural else noun.en
    if adjective if adjective is not None else rng.random() < 0.5:
        masc, en_adj = _pick(rng, ADJECTIVES)  # type: ignore[misc]
        es_noun = f"{es_noun} {_adj(masc, noun.gender, plural)}"
        en_noun = f"{en_adj} {en_noun}"
    es = f"{_ARTICLES[(kind, noun.gender, plural)]} {es_noun}"
    en = f"{lex.article(en_noun)} {en_noun}" if (kind, plural) == ("indef", False) else \
        f"{_ARTICLES_EN[(kind, plural)]} {en_noun}"  # fmt: skip
    return es, en, noun.gender, plural


def _subject(rng: Rng) -> tuple[str, str, int, str]:
    """``(es, en, person, gender)``."""
    r = rng.random()
    if r < 0.4:
        es, en, person = _pick(rng, _PRONOUNS)  # type: ignore[misc]
        return es, en, person, "f" if es in ("ella", "ellas") else "m"
    if r < 0.7:
        name = _pick(rng, _NAMES)
        return name, name, 2, "f" if name[-1] == "a" or name in ("Carmen", "Isabel", "Raquel") else "m"  # type: ignore
    es, en, gender, plural = _np(rng, PEOPLE, kind=_pick(rng, ("def", "my", "our")), adjective=False)  # type: ignore
    return es, en, 4 if plural else 2, gender


def _person_object(rng: Rng) -> tuple[str, str]:
    """Object person with the personal ``a``: ``a María``, ``al médico``."""
    if rng.random() < 0.4:
        name = _pick(rng, _NAMES)
        return f"a {name}", name  # type: ignore[return-value]
    es, en, _, _ = _np(rng, PEOPLE, adjective=False, kind=_pick(rng, ("def", "my", "our")))  # type: ignore
    es = "al " + es[3:] if es.startswith("el ") else "a " + es
    return es, en


def _count(rng: Rng) -> int:
    while True:
        n = rng.randint(2, 199)
        if n % 10 != 1 or n % 100 == 11:
            return n


def _clock(rng: Rng) -> str:
    return f"{rng.randint(2, 12)}:{rng.choice((0, 15, 30, 45, 10, 20, 40, 50)):02d}"


def _be_es(person: int, past: bool = False) -> str:
    return conjugate_es("estar", "past" if past else "present", person)


def _be_en(person: int, past: bool = False) -> str:
    if past:
        return "was" if person in (0, 2) else "were"
    return "am" if person == 0 else "is" if person == 2 else "are"


# --- templates: each returns (spanish, english) ---------------------------------------------------------


def _t_svo(rng: Rng) -> tuple[str, str]:
    s_es, s_en, person, _ = _subject(rng)
    verb: Verb = _pick(rng, VERBS_THING)  # type: ignore[assignment]
    tense = _pick(rng, ("present", "past", "future"))
    o_es, o_en, _, _ = _np(rng, THINGS)
    es = f"{s_es} {conjugate_es(verb.es, tense, person)} {o_es}"  # type: ignore[arg-type]
    en = f"{s_en} {conjugate_en(verb.en, tense, person)} {o_en}"  # type: ignore[arg-type]
    if rng.random() < 0.5:
        times = {"past": _PAST_TIME, "future": _FUTURE_TIME, "present": _HABIT_TIME}[tense]  # type: ignore[index]
        t_es, t_en = _pick(rng, times)  # type: ignore[misc]
        es, en = f"{es} {t_es}", f"{en} {t_en}"
    return es + ".", en + "."


def _t_person(rng: Rng) -> tuple[str, str]:
    s_es, s_en, person, _ = _subject(rng)
    verb: Verb = _pick(rng, VERBS_PERSON)  # type: ignore[assignment]
    tense = _pick(rng, ("present", "past", "future"))
    o_es, o_en = _person_object(rng)
    es = f"{s_es} {conjugate_es(verb.es, tense, person)} {o_es}"  # type: ignore[arg-type]
    en = f"{s_en} {conjugate_en(verb.en, tense, person)} {o_en}"  # type: ignore[arg-type]
    if rng.random() < 0.5:
        day_es, day_en = _pick(rng, _WEEKDAYS)  # type: ignore[misc]
        es, en = f"{es} el {day_es}", f"{en} on {day_en}"
    return es + ".", en + "."


def _t_intrans(rng: Rng) -> tuple[str, str]:
    s_es, s_en, person, _ = _subject(rng)
    verb: Verb = _pick(rng, VERBS_INTRANS)  # type: ignore[assignment]
    tense = _pick(rng, ("present", "past", "future"))
    es = f"{s_es} {conjugate_es(verb.es, tense, person)}"  # type: ignore[arg-type]
    en = f"{s_en} {conjugate_en(verb.en, tense, person)}"  # type: ignore[arg-type]
    r = rng.random()
    if r < 0.4:
        p_es, p_en, _, _ = _np(rng, PLACES, plural=False, kind="def", adjective=False)
        prep_es, prep_en = _pick(rng, (("en", "in"), ("cerca de", "near"), ("detrás de", "behind")))  # type: ignore
        phrase_es = f"{prep_es} {p_es}".replace("de el ", "del ")
        es, en = f"{es} {phrase_es}", f"{en} {prep_en} {p_en}"
    elif r < 0.7:
        c_es, c_en = _pick(rng, _CITIES)  # type: ignore[misc]
        es, en = f"{es} en {c_es}", f"{en} in {c_en}"
    return es + ".", en + "."


def _t_have(rng: Rng) -> tuple[str, str]:
    s_es, s_en, person, _ = _subject(rng)
    n = _count(rng)
    noun: Noun = _pick(rng, THINGS + ANIMALS)  # type: ignore[assignment]
    tense = _pick(rng, ("present", "past"))
    es = f"{s_es} {conjugate_es('tener', tense, person)} {n} {noun.es_plural}"  # type: ignore[arg-type]
    en = f"{s_en} {conjugate_en('have', tense, person)} {n} {noun.en_plural}"  # type: ignore[arg-type]
    return es + ".", en + "."


def _t_where(rng: Rng) -> tuple[str, str]:
    o_es, o_en, _, plural = _np(rng, THINGS + ANIMALS, kind=_pick(rng, ("def", "my", "our", "this")))  # type: ignore
    if rng.random() < 0.5:
        return f"¿Dónde {'están' if plural else 'está'} {o_es}?", f"Where {'are' if plural else 'is'} {o_en}?"
    p_es, p_en, _, _ = _np(rng, PLACES, plural=False, kind="def", adjective=False)
    verb = "están" if plural else "está"
    return f"{o_es} {verb} en {p_es}.", f"{o_en} {'are' if plural else 'is'} in {p_en}."


def _t_describe(rng: Rng) -> tuple[str, str]:
    o_es, o_en, gender, plural = _np(rng, THINGS + ANIMALS + PLACES, adjective=False,
                                     kind=_pick(rng, ("def", "this", "my", "our")))  # type: ignore  # fmt: skip
    masc, en_adj = _pick(rng, ADJECTIVES)  # type: ignore[misc]
    adv_es, adv_en = _pick(rng, (("muy", "very "), ("bastante", "quite "), ("demasiado", "too "), ("", "")))  # type: ignore
    verb_es, verb_en = ("son", "are") if plural else ("es", "is")
    adj = _adj(masc, gender, plural)  # type: ignore[arg-type]
    es = f"{o_es} {verb_es} {adv_es} {adj}"
    return es + ".", f"{o_en} {verb_en} {adv_en}{en_adj}."


def _t_feel(rng: Rng) -> tuple[str, str]:
    s_es, s_en, person, gender = _subject(rng)
    masc, en_adj = _pick(rng, PERSON_ADJECTIVES)  # type: ignore[misc]
    past = rng.random() < 0.3
    adj = _adj(masc, gender, person in (3, 4))  # type: ignore[arg-type]
    es = f"{s_es} {_be_es(person, past)} {adj}"  # type: ignore[arg-type]
    en = f"{s_en} {_be_en(person, past)} {en_adj}"  # type: ignore[arg-type]
    if rng.random() < 0.5:
        t_es, t_en = _pick(rng, _PAST_TIME if past else (("hoy", "today"), ("ahora", "now"), ("esta tarde", "this afternoon")))  # type: ignore
        es, en = f"{es} {t_es}", f"{en} {t_en}"
    return es + ".", en + "."


def _t_question(rng: Rng) -> tuple[str, str]:
    verb: Verb = _pick(rng, VERBS_THING)  # type: ignore[assignment]
    o_es, o_en, _, _ = _np(rng, THINGS)
    r = rng.random()
    if r < 0.35:
        return f"¿Quieres {verb.es} {o_es}?", f"Do you want to {verb.en} {o_en}?"
    if r < 0.7:
        return f"¿Puedes {verb.es} {o_es}?", f"Can you {verb.en} {o_en}?"
    name = _pick(rng, _NAMES)
    return (f"¿{conjugate_es(verb.es, 'past', 2).capitalize()} {name} {o_es}?",
            f"Did {name} {lex.verb_forms(verb.en)['base']} {o_en}?")  # fmt: skip


def _t_like(rng: Rng) -> tuple[str, str]:
    o_es, o_en, _, plural = _np(rng, THINGS + ANIMALS, kind="def")
    name = _pick(rng, _NAMES)
    gusta = "gustan" if plural else "gusta"
    if rng.random() < 0.5:
        return f"A {name} le {gusta} {o_es}.", f"{name} likes {o_en}."
    return f"Me {gusta} {o_es}.", f"I like {o_en}."


def _t_time(rng: Rng) -> tuple[str, str]:
    clock = _clock(rng)
    r = rng.random()
    if r < 0.4:
        o_es, o_en, _, _ = _np(rng, PLACES, plural=False, kind="def", adjective=False)
        return f"{o_es} abre a las {clock}.", f"{o_en} opens at {clock}."
    s_es, s_en, person, _ = _subject(rng)
    verb: Verb = _pick(rng, VERBS_INTRANS)  # type: ignore[assignment]
    tense = _pick(rng, ("present", "past", "future"))
    return (f"{s_es} {conjugate_es(verb.es, tense, person)} a las {clock}.",  # type: ignore[arg-type]
            f"{s_en} {conjugate_en(verb.en, tense, person)} at {clock}.")  # type: ignore[arg-type]  # fmt: skip


def _t_price(rng: Rng) -> tuple[str, str]:
    o_es, o_en, _, plural = _np(rng, THINGS, kind=_pick(rng, ("def", "this")))  # type: ignore[arg-type]
    n = _count(rng)
    verb_es, verb_en = ("cuestan", "cost") if plural else ("cuesta", "costs")
    return f"{o_es} {verb_es} {n} euros.", f"{o_en} {verb_en} {n} euros."


def _t_go(rng: Rng) -> tuple[str, str]:
    s_es, s_en, person, _ = _subject(rng)
    tense = _pick(rng, ("present", "past", "future"))
    c_es, c_en = _pick(rng, _CITIES)  # type: ignore[misc]
    if rng.random() < 0.5:
        p_es, p_en, _, _ = _np(rng, PLACES, plural=False, kind="def", adjective=False)
        c_es, c_en = p_es, p_en
    dest_es = f"a {c_es}".replace("a el ", "al ")
    en_verb = {"present": lex.verb_forms("go")["third" if person == 2 else "base"], "past": "went",
               "future": "will go"}[tense]  # type: ignore[index]  # fmt: skip
    es = f"{s_es} {conjugate_es('ir', tense, person)} {dest_es}"  # type: ignore[arg-type]
    en = f"{s_en} {en_verb} to {c_en}"
    if rng.random() < 0.5:
        day_es, day_en = _pick(rng, _WEEKDAYS)  # type: ignore[misc]
        es, en = f"{es} el {day_es}", f"{en} on {day_en}"
    return es + ".", en + "."


_TEMPLATES: tuple[Callable[[Rng], tuple[str, str]], ...] = (
    _t_svo, _t_svo, _t_person, _t_intrans, _t_have, _t_where, _t_describe, _t_feel, _t_question, _t_like,
    _t_time, _t_price, _t_go,
)  # fmt: skip


def _finish(text: str) -> str:
    text = " ".join(text.split())
    if text.startswith("¿"):
        return "¿" + text[1:2].upper() + text[2:]
    return text[:1].upper() + text[1:]


def generate_parallel(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` distinct ``(spanish, english)`` sentence pairs with the same meaning, the same for the same seed.

    Both the Spanish and the English spoken forms are distinct across the list (so no side of a test pair can
    appear in training).

    Raises:
        ConfigError: ``n`` is negative, or that many distinct pairs could not be made.
    """
    if n < 0:
        raise ConfigError(f"generate_parallel: n must be >= 0, got {n}")
    rng = random.Random(f"seqspeech-synth-es-en-{seed}")
    pairs: list[tuple[str, str]] = []
    seen_es: set[str] = set()
    seen_en: set[str] = set()
    attempts = 0
    while len(pairs) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ConfigError(f"generate_parallel: only {len(pairs)} distinct pairs after {attempts} tries")
        es, en = _TEMPLATES[rng.randrange(len(_TEMPLATES))](rng)
        es, en = _finish(es), _finish(en)
        spoken_es, spoken_en = verbalize_es(es), verbalize_en(en)
        if spoken_es in seen_es or spoken_en in seen_en:
            continue
        seen_es.add(spoken_es)
        seen_en.add(spoken_en)
        pairs.append((es, en))
    return pairs
