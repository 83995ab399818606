"""Language detection for short chat messages (Spanish / English).

Strategy
--------
1. Normalise (lowercase, strip accents) and tokenise.
2. Score tokens against a lexicon of very common chat words in each language
   (covers 1–2 word messages where n-gram models are guesswork: "ola", "si",
   "cuanto debo", "thanks").
3. For 3+ word messages add the log-odds from py3langid restricted to en/es.
4. Fall back to the conversation's prior for neutral messages (digits, dates,
   emoji, "ok", names).

Pure functions; the py3langid model is built lazily on first use and cached.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

from services.text import words

SUPPORTED = ("en", "es")
DEFAULT = "es"

# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

# Very common chat words, accent-stripped, lowercase.  Words that are equally
# common in both languages ("no", "me", "a", "ok", "menu", "link") are left out
# on purpose: they carry no evidence.
ES_WORDS = frozenset("""
    hola ola holi holis holaa buenas buenos buen dia dias tardes noches saludos
    gracias grasias muchas mucho muchos si sip simon claro vale bueno listo dale
    sale orale oye mire disculpe disculpa perdon perdone porfa porfavor xfa xfavor
    favor por que q ke como komo cuanto kuanto cuantos cuanta cuando kuando donde
    cual cuales quien porque xq pq debo devo debe debes deuda pago pague pagar
    pagos pagado pagando abonar abono ayuda ayudar ayudeme caso cita citas mi mis
    tu su sus yo usted ustedes el la los las lo le les del en un una unos unas y
    o con para pero tambien ya aun todavia esta estoy estan este esto eso es son
    soy fue hay tengo tiene tienen tenemos quiero quisiera queria necesito
    nesesito nesecito nececito ocupo puedo puede pueden podria hacer hago hace
    mande manden mandar mandeme mandaron mando envie enviar envien envio
    documentos papeles falta faltan se te nos bien mal senor senora licenciado
    licenciada licenciado abogado abogada hablar llamar llamen llame llamenme
    llamame alguien persona noticias novedad novedades tramite solicitud saldo
    factura cuenta entrevista corte audiencia huellas biometricos fecha hora
    manana hoy ayer semana mes ano jajaja jaja jeje jejeje baja alta parar
    mensajes mensaje nada algo todo todos onda ahorita nomas mas menos espanol
    ingles aqui ahi alla entonces estado proceso respuesta recibi recibido
    llego paso pasa va vamos voy tramites permiso trabajo residencia esposo esposa
    hijo hija mama papa primo oficina semana lunes martes miercoles jueves viernes
    sabado domingo enero febrero marzo abril mayo junio julio agosto septiembre
    octubre noviembre diciembre nuevo nueva otra otro vez verdad dios bendiga
    pasaporte acta fotos carta copia licencia lista opciones gusto atentamente
    estimada estimado tal necesitan hablo habla favorcito nuestra nuestro
    pregunta preguntas cosa cosas ahora despues antes luego tiempo dinero
    nuevo ese esa esos esas muy porque pues hacer dijo dice decir sabe saber
    creo ver veo estaba estar tener hacer ir vino venir gente quien nadie
    ningun ninguna siempre nunca tambien donde contestan contesta responden
    gustaria podrian favor ayer anoche luego
""".split())

EN_WORDS = frozenset("""
    hi hey hello hiya heya thanks thank thx ty yes yeah yep yup nope please pls
    plz i im ive id ill my you u your ur youre we our they them it its is are am
    was were be been being the an and or of to for with on at in from about this
    that these those what whats how hows when whens where wheres why who whos
    do does did dont doesnt didnt cant can could would will wont should need
    needs want wanted got get getting have has had owe pay paid paying payment
    balance invoice bill case status update updates news any anything something
    still yet just sure good morning afternoon evening night great cool fine
    sorry wrong number call calling talk speak person someone somebody human agent
    lawyer attorney appointment interview court hearing date time today tomorrow
    yesterday week month money send sent documents document missing passport
    upload uploaded photos pictures messages message text texting texts lol
    much many left so too very not there here some already again anymore
    everything else also know let like make made tell check checking application
    petition approved pending receipt permit work husband wife son daughter
    office open guys thats wait waiting weeks days representative operator
    options option resubscribe question questions thing things way back go going
    come coming see look said say new old one two first last next than then
    because but if all out up down over off only other into our out right
    really well doing done take taken give given find found think thought
    receive received email phone address haha hahaha nevermind never mind
""".split())

# Compliance keywords and other words that look English but are used by
# everyone (carrier STOP/HELP keywords, "ok", "menu").  They only count as weak
# English evidence: enough to answer "en" with no prior, never enough to
# override a known conversation language.
WEAK_EN_WORDS = frozenset("""
    stop stopall unsubscribe cancel end quit revoke optout start unstop subscribe
    help info
""".split())

# Explicit "switch language" requests.
_LANG_NAMES = {
    "english": "en", "ingles": "en", "inglish": "en", "engish": "en",
    "spanish": "es", "espanol": "es", "espanish": "es", "castellano": "es",
}
_SWITCH_FILLER = frozenset("""
    in en please pls plz por favor porfa porfavor xfa to a al switch change cambiar
    cambia cambie cambien the language idioma speak speaks hablo habla hablan
    hablar hablame hableme i can we you do only solo solamente just quiero want
    prefer prefiero mejor si yes ok okay puede pueden podemos talk escribe
    escribeme escriban write me let lets usar use el
""".split())

_SPANISH_MARKS = set("ñ¿¡áéíóúü")

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def _tokens(text: str) -> list[str]:
    return words(text, digits=False)


@lru_cache(maxsize=4096)
def _canon(tok: str) -> str:
    """Collapse letter repetitions ("holaaa" -> "hola", "hiii" -> "hi")."""
    if tok in ES_WORDS or tok in EN_WORDS or tok in WEAK_EN_WORDS:
        return tok
    two = re.sub(r"(.)\1{2,}", r"\1\1", tok)
    if two in ES_WORDS or two in EN_WORDS or two in WEAK_EN_WORDS:
        return two
    one = re.sub(r"(.)\1+", r"\1", tok)
    if one in ES_WORDS or one in EN_WORDS or one in WEAK_EN_WORDS:
        return one
    return two


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(SUPPORTED))
    return ident


def warm_up() -> None:
    """Loads the language model now (≈0.5 s), not inside the first job that needs it."""
    _identifier()


def _langid_logodds(text: str) -> float:
    """log(P(es)/P(en)) from py3langid, clipped to [-6, 6]."""
    ranked = dict(_identifier().rank(text))
    p_es = min(max(ranked.get("es", 0.5), 1e-6), 1 - 1e-6)
    return max(-6.0, min(6.0, math.log(p_es / (1.0 - p_es))))


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def explicit_switch(text: str) -> str | None:
    """'en' / 'es' when the whole message asks to change language, else None.

    Matches e.g. "English", "in english please", "inglés", "en español por
    favor", "hablo español", "spanish". Longer messages that merely mention a
    language ("my son speaks english but ...") do not count.
    """
    if not text:
        return None
    toks = [_canon(t) for t in _tokens(text)]
    if not toks or len(toks) > 6:
        return None
    found = {_LANG_NAMES[t] for t in toks if t in _LANG_NAMES}
    if len(found) != 1:
        return None
    rest = [t for t in toks if t not in _LANG_NAMES and t not in _SWITCH_FILLER]
    return found.pop() if not rest else None


def _lexicon_score(toks: list[str]) -> tuple[float, float, bool]:
    es = en = 0.0
    weak_only = True
    for tok in toks:
        tok = _canon(tok)
        if tok in ES_WORDS:
            es += 1.0
            weak_only = False
        elif tok in EN_WORDS:
            en += 1.0
            weak_only = False
        elif tok in WEAK_EN_WORDS:
            en += 0.4
    return es, en, weak_only


def detect_language(text: str, prior: str | None = None) -> str:
    """'en' or 'es' for a chat message.

    Neutral / ambiguous messages (digits, dates, emoji, "ok", names, carrier
    keywords when a prior is known) return ``prior``; with no prior they
    return 'en' only when the text looks English, otherwise 'es'.
    """
    fallback = prior if prior in SUPPORTED else None
    if not text or not text.strip():
        return fallback or DEFAULT

    toks = _tokens(text)
    if not toks:  # digits, emoji, punctuation only
        return fallback or DEFAULT

    es, en, weak_only = _lexicon_score(toks)
    if any(c in _SPANISH_MARKS for c in text.lower()):
        es += 1.5
        weak_only = False

    if len(toks) <= 2:
        diff = es - en
        if weak_only and fallback:
            return fallback
        if diff >= 0.9:
            return "es"
        if diff <= -0.9:
            return "en"
        if fallback:
            return fallback
        if diff < 0:
            return "en"
        # Nothing in the lexicon (names, rare words): trust the model only
        # when it is very sure.
        lang, conf = _identifier().classify(text)
        if lang == "en" and conf >= 0.95 and sum(map(len, toks)) >= 6:
            return "en"
        return DEFAULT

    score = 0.8 * _langid_logodds(text) + (es - en)
    if fallback:
        score += 0.3 if fallback == "es" else -0.3
    if score > 0:
        return "es"
    if score < 0:
        return "en"
    return fallback or DEFAULT
