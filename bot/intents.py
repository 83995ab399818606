"""Intent classification for client chat messages (Spanish / English / Spanglish).

Pipeline
--------
1. Normalise: lowercase, strip accents, drop apostrophes ("what's" -> "whats"),
   punctuation and emoji, tokenise.
2. Canonicalise each token against the keyword vocabulary: collapse letter
   repetitions ("holaaa", "ayudaa"), then tolerate one typo (edit distance 1)
   for tokens of 5+ letters.
3. Carrier compliance first: whole-message keywords (STOP, START, HELP, BAJA,
   ...) and plain-language opt-out / opt-in phrasings.
4. Pure acknowledgements ("ok gracias 👍", "sounds good") -> "thanks"; a
   request alongside the thanks keeps the request ("gracias, cuánto debo?").
5. "Otro caso" / "other case" / "switch case" -> "switch_matter", unless
   handoff scores best ("quiero hablar con el abogado de mi otro caso").
6. Weighted keyword / phrase scores per intent; the best one wins if it clears
   a threshold. Greetings only win when nothing else does ("hola, cuánto
   debo?" -> balance). Otherwise "unknown".

Data (the tables below) is kept separate from the logic at the bottom.
"""

from __future__ import annotations

import re
from functools import lru_cache

from services.text import words

INTENTS = (
    "status", "balance", "payment", "checklist", "appointments", "handoff",
    "opt_out", "opt_in", "help", "greeting", "switch_matter", "thanks",
    "unknown",
)

# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

# Polite filler ignored when deciding whether a message is "just a keyword".
FILLER = frozenset("""
    please pls plz por favor porfa porfavor xfa now ahora ya ok okay thanks
    gracias thank you
""".split())

# Whole-message keywords (after dropping FILLER).  Case/punctuation ignored.
OPT_OUT_KEYWORDS = frozenset({
    "stop", "stopall", "stop all", "unsubscribe", "cancel", "end", "quit",
    "revoke", "optout", "opt out", "baja", "parar", "alto",
    # plain-language whole-message stops
    "stop it", "stop me", "stop this", "stop that", "stop them", "stop everything",
    "cancelar", "cancela", "cancelen", "cancelar todo", "detener", "detengan",
    "detenga", "detener todo", "basta", "paren", "parale",
})
OPT_IN_KEYWORDS = frozenset({
    "start", "unstop", "subscribe", "resubscribe", "alta", "opt in", "optin",
    "yes start", "start again",
})
HELP_KEYWORDS = frozenset({
    "help", "ayuda", "info", "menu", "options", "opciones", "help me",
    "ayudame", "ayudeme", "necesito ayuda", "i need help",
})

# Plain-language revocations / re-subscriptions, as regexes over the
# normalised text (lowercase, no accents, single spaces).
_MSG = r"(mensajes?|msjs?|textos?|sms|whatsapps?|notificaciones|recordatorios|avisos|alertas)"
_EN_MSG = r"(messages?|texts?|msgs?|sms|notifications?|reminders?|alerts?)"
OPT_OUT_PATTERNS = (
    r"\bno (me |nos )?(manden|mande|envien|envie|escriban|escriba|mandes|envies|escribas)"
    r"( (mas|nada|ningun\w*)\b| .*\b" + _MSG + r"\b)",
    r"\bno (quiero|deseo|queremos) (recibir |que me (manden|envien|escriban) )?(mas |ningun |ningunos? |sus |los |estos |tus )*" + _MSG,
    r"\bno mas " + _MSG,
    r"\bdej\w* de (escrib|mand|envi|text|molest)\w*",
    r"\b(quit|sac|borr|elimin|remuev)\w* de (la|su|sus|tu) (lista|contactos|base)",
    r"\b(darme|dame|denme|deme) de baja\b",
    r"\b(stop|quit) (texting|messaging|sending|contacting|emailing)\b",
    # "stop the messages please", "stop sms", "stop all these texts"
    r"\bstop\b.{0,15}\b(" + _EN_MSG[1:-1] + "|" + _MSG[1:-1] + r")\b",
    # "I want to stop receiving messages", "quit getting these texts"
    r"\b(stop|quit) (receiv|get)\w*\b.{0,15}\b(" + _EN_MSG[1:-1] + "|" + _MSG[1:-1] + r")\b",
    # "cancelar los mensajes", "detener mensajes", "turn off the reminders"
    r"\b(cancel|cancelar|cancelen|cancele|cancela|detener|detengan|detenga|deten|parar|paren|"
    r"pare|suspender|suspendan|suspenda|desactivar|desactiven|desactive|apagar|suspend|"
    r"disable|turn off)( (the|all|my|these|those|your|los|las|mis|todos|todas|estos|estas|"
    r"sus|tus|el|la|de|esos|esas))* (" + _EN_MSG[1:-1] + "|" + _MSG[1:-1] + r")\b",
    # "para ya de mandarme mensajes", "ya basta de mensajes"
    r"\b(para|paren|pare|parale|basta)( ya)? de (escrib|mand|envi|text|molest|mensaj)\w*",
    # "quiero dejar de recibir mensajes"
    r"\b(dej\w*|parar) de recibir\b.{0,20}\b" + _MSG + r"\b",
    r"\bno (me |nos )?(contacten|contacte|contactes|molesten|moleste|molestes)\b",
    r"\bdont (text|message|contact|send)\b.*\b(me|anymore|again)\b",
    # ... but not "I don't want to text, can the lawyer call me".
    r"\bdont want\b(?! to (text|message|msg|write|type)\b).{0,30}\b" + _EN_MSG + r"\b",
    r"\b(remove|take) (me|my number) (from|off)\b",
    r"\bno more " + _EN_MSG,
    r"\bunsubscribe me\b",
    r"\b(cancel\w*|anular|terminar) (mi |la |my |the )?(suscripcion|subscription)\b",
    r"\bno (quiero|deseo) que me (escriban|manden|envien|contacten|molesten|sigan)\b",
    r"\bno (enviarme|mandarme|escribirme|contactarme)\b",
    r"\b(dejenme|dejame) en paz\b",
    r"\bleave me alone\b",
    r"\bno me interesa\b.*\b" + _MSG + r"\b",
    r"\b(remove|delete|erase) my (number|phone)\b",
    r"\b(borr|elimin|quit|sac)\w* mi (numero|telefono)\b",
    r"\bopt (me )?out\b",
    # "ya no me escriban", "no me manden (nada) a este numero"
    r"\bya no (me |nos )?(manden|mande|envien|envie|escriban|escriba|textee?n|contacten|molesten)\b",
    r"\bno (me |nos )?(manden|mande|envien|envie|escriban|escriba|textee?n|contacten)\b.{0,20}"
    r"\b(a|en|por) (este|mi|el) (numero|telefono|celular|cel|whatsapp)\b",
    r"\b(stop|quit|dont) (text|messag|send|contact|call)\w*\b.{0,20}\b(this|my) (number|phone)\b",
)
OPT_IN_PATTERNS = (
    r"\bvolver a recibir\b",
    r"\bvuelvan a (mand|envi|escrib)\w*",
    r"\b" + _MSG + r" (de nuevo|otra vez|nuevamente)\b",
    r"\b(re)?activ\w*\b.{0,20}\b" + _MSG,
    r"\bresume (sending|texting|messag\w*)\b",
    r"\b(darme|dame|denme|deme) de alta\b",
    r"\b(get|receive|getting|receiving) " + _EN_MSG + r" again\b",
    r"\bstart (texting|messaging|sending)\b.*\bagain\b",
    r"\b(re ?subscribe|subscribe me)\b",
    r"\bopt (me )?(back )?in\b",
    # "me pueden volver a mandar los avisos", "mandenme mensajes otra vez"
    r"\bvolver a (mand|envi|escrib)\w*\b.{0,25}\b" + _MSG + r"\b",
    r"\b(want|like) (to )?(get|receive) (the )?" + _EN_MSG + r" (again|back)\b",
)
# Opt-out phrasings that are *not* revocations (checked before OPT_OUT_PATTERNS).
NOT_OPT_OUT_PATTERNS = (
    r"\b(cita|citas|appointment|appointments|entrevista|interview|audiencia|hearing|pago|payment|caso|case)\b",
    # "please don't stop the messages", "why did you stop the reminders?"
    r"\b(dont|do not|never) stop\b",
    r"\bwhy (did|have|has) (you|u|they|it)( all)? stop\b",
)

# The client wants to talk about a different matter ("mi otro caso", "switch
# case").  Wins over the matter-scoped intents (answering those would use the
# currently selected matter); handoff and the compliance intents still win.
SWITCH_MATTER_PATTERNS = (
    r"\botros? (caso|casos|tramite|tramites|expediente|expedientes|proceso)\b",
    r"\b(la|mi|mis|las|de la|de mi) otras? (solicitud|solicitudes|peticion|peticiones|"
    r"aplicacion|aplicaciones)\b",
    r"\bcambi(ar|emos|o|e|a)( me)? (de|a|al) (caso|casos|tramite|expediente)\b",
    r"\bcambiar (caso|tramite|expediente)\b",
    r"\b(other|different) (case|cases|application|applications|petition|petitions|"
    r"matter|matters|file)\b",
    r"\banother (case|matter)\b",
    r"\bswitch\w*( over)?( to)?( the| my| a| another| other| different)* "
    r"(case|cases|matter|matters|application|file)\b",
    r"\bchange( to)?( the| my| a)?( other| different)? (case|matter)\b",
)
# Intents that keep priority over switch_matter when they score best.
SWITCH_MATTER_YIELDS_TO = frozenset({"handoff"})

# Acknowledgements ("gracias", "ok 👍", "sounds good").  A message is "thanks"
# when it is made up only of these units (longest match first) and at least
# one of them is a core acknowledgement; anything else in the message (a
# request, a question mark) leaves it to the other intents.
ACK_CORE = """
    gracias | muchas gracias | mil gracias | muchisimas gracias | gracias a usted |
    gracias a ustedes | grax | graxias | grcs | thanks | thank you | thank | ty |
    tysm | tyvm | thanx | thnx | thks | tnx | thanks a lot | thank you very much |
    agradezco | le agradezco | se lo agradezco | les agradezco | se agradece |
    agradecido | agradecida | appreciate it | i appreciate it | much appreciated |
    appreciated | ok | okay | okey | oki | okis | okk | okie | k | kk | perfecto |
    perfecta | perfect | entendido | entendida | entiendo | understood | vale |
    listo | bueno | esta bien | muy bien | todo bien | de acuerdo | deacuerdo |
    dacuerdo | claro | claro que si | got it | gotcha | sounds good | sound good |
    great | alright | all right | noted | recibido | enterado | enterada |
    excelente | genial | cool | awesome | will do | fine | good | that works |
    no problem | np | sure | igualmente | you too | same to you | ok then |
    sounds great | perfect thanks | no gracias | no thanks | no thank you
"""
ACK_EXTRA = """
    ah | oh | ahh | ohh | ya | si | yes | yeah | yep | yup | pues | entonces |
    and | y | so | very | much | a lot | muchas | mil | again | anyway | anyways |
    de nuevo | otra vez | de todos modos | de todas formas | por todo | for everything |
    for your help | for the help | por su ayuda | por tu ayuda | por la ayuda |
    por toda su ayuda | for all your help | for the info | for the information |
    por la informacion | por la info | por avisar | por avisarme | for letting me know |
    for the update | por la respuesta | for your response | for the quick response |
    por su tiempo | for your time | por su atencion | por contestar | for answering |
    lol | dios le bendiga | dios la bendiga | dios lo bendiga | dios los bendiga |
    dios les bendiga | dios me la bendiga | que dios le bendiga | que dios la bendiga |
    que dios lo bendiga | que dios los bendiga | que dios les bendiga |
    god bless | god bless you | bendiciones | blessings | licenciada | licenciado |
    lic | abogada | abogado | senora | senor | senorita | sir | maam | miss |
    amigo | amiga | bye | adios | chao | chau | hasta luego | hasta pronto |
    nos vemos | see you | take care | cuidese | have a good day | have a nice day |
    have a great day | buen dia | buenas noches | buenas tardes | buenos dias |
    feliz dia | bonito dia | good night | good morning | hola | hi | hello | hey |
    you | so much | tanto | muchisimo | really | truly | de verdad | super | todo |
    the | que | for | por | you guys | ustedes | a usted | a todos | everyone |
    i | ill | wait | espero | espero su respuesta | quedo atento | quedo atenta |
    quedo pendiente | gracias de antemano | thanks in advance | bendecido |
    bendecida | excelente dia | buen fin | buen fin de semana
"""
# Emoji-only messages that acknowledge (the tokenizer drops emoji).
ACK_EMOJI = frozenset("👍👌🙏🙌✅😊🙂☺❤💙💕🥰🤝👏💯😀😁😃")
# Gratitude words: with one of these a single extra word (a name: "gracias
# Maria") is still an acknowledgement.
GRATITUDE = frozenset("gracias thanks thank ty tysm tyvm thanx thnx agradezco grax".split())
# Words that are never the name in "gracias Maria" ("thanks for nothing").
NOT_NAMES = frozenset("nothing nada but pero not nope no anything".split())
_LAUGH = re.compile(r"^(ja|je|ha|he|ji|jo){2,}[jh]?$")

# Weighted keywords / phrases per intent.  Keys are space-separated token
# sequences (already normalised: lowercase, no accents); values are weights.
# Every matching entry adds its weight, so a phrase also collects the weights
# of its words; negative weights cancel a word inside a known phrase
# ("green card" is not a payment card, "pay stubs" are documents).
KEYWORDS: dict[str, dict[str, float]] = {
    "status": {
        # es
        "caso": 1.5, "tramite": 1.5, "tramites": 1.5, "proceso": 1.2,
        "solicitud": 1.5, "peticion": 1.5, "noticias": 2, "noticia": 2,
        "novedad": 2, "novedades": 2, "actualizacion": 2, "estatus": 2,
        "estado": 1.5, "aprobaron": 2, "aprobado": 2, "aprobada": 2,
        "aprobo": 2, "aprobacion": 2, "negaron": 2, "negado": 2,
        "pendiente": 1, "respuesta": 1.5, "respondieron": 2, "contestaron": 1.5,
        "migracion": 1.5, "inmigracion": 1.5, "recibo": 1.2, "uscis": 1.5,
        "green card": 2, "residencia": 1.5, "permiso": 0.8, "asilo": 1,
        "visa": 1, "ciudadania": 1, "salio": 1, "me llego": 1,
        "significa": 1, "como va": 2, "como vamos": 2, "como van": 2,
        "como sigue": 2, "en que va": 2, "que paso con": 2, "que ha pasado": 2,
        "que onda con": 2, "que hay de": 1.5, "no se nada": 2,
        "saben algo": 2, "sabe algo": 2, "avance": 2, "avances": 2,
        "cuanto tiempo": 2, "tarda": 1.5, "tardan": 1.5, "decidieron": 2,
        "decision": 1.5, "movio": 1.5, "movimiento": 2, "renovacion": 1.5,
        "daca": 1.5, "ajuste": 0.5, "me llega": 1, "tarjeta de trabajo": 2,
        "tarjeta de residencia": 2, "saben algo": 2, "avisan": 1,
        "update": 2, "updates": 2, "tarjeta verde": 2, "mica": 1.5,
        "permiso de trabajo": 0.7, "esperando": 1.5, "sigo esperando": 1,
        "en espera": 1.5, "en proceso": 1.5, "resolvieron": 2, "resolver": 1,
        "mi carta de": 0.5, "ya esta listo": 1.5, "ya esta lista": 1.5,
        # en
        "case": 1.5, "application": 1.5, "petition": 1.5, "news": 2,
        "status": 2, "approved": 2, "approve": 1.5, "approval": 2,
        "denied": 2, "decision": 1.5, "pending": 1.5, "progress": 2,
        "movement": 2, "respond": 1.5, "responded": 2, "response": 1.5,
        "heard back": 2, "hear back": 2, "hear anything": 2, "receipt": 1.5,
        "notice": 1, "stands": 1.5, "anything new": 2, "checking in": 1.5,
        "going on with": 1.5, "whats happening": 1.5,
        "immigration": 1.5, "asylum": 1, "citizenship": 1, "rfe": 2,
        "how long": 1.5, "hows my": 1.5, "how is my": 1.5, "any word": 1.5,
        "decided": 2, "moved": 1.5, "moving": 1, "renewal": 1.5, "done": 0.5,
        "happened": 1.5, "work card": 2, "work permit": 0.7, "waiting": 1.5,
        "still waiting": 1, "processing": 1.5, "processed": 1.5,
        "mean": 1, "means": 1, "got a letter": 1, "any news": 1,
        "filed": 1.5, "heard": 1.5, "havent heard": 1, "heard anything": 1,
        "no hemos sabido": 2, "no sabemos nada": 2,
    },
    "balance": {
        # es
        "debo": 3, "debemos": 3, "deuda": 2.5, "adeudo": 2.5, "saldo": 3,
        "factura": 2.5, "facturas": 2.5, "honorarios": 2, "cuanto": 1,
        "cuanto tiempo": -1, "cuanto es": 0.5, "cuanto me falta": 3,
        "cuanto me queda": 3, "por pagar": 2.5, "pendiente de pago": 4,
        "pendiente de pagar": 4, "estado de cuenta": 4, "al corriente": 3,
        "llevo pagado": 3, "he pagado": 2, "total": 1, "restante": 1.5,
        "le debo": 1, "cuanto tengo que": 2.5, "mi cuenta": 2,
        "cuenta": 1.5, "me di cuenta": -3, "dar cuenta": -1.5, "por mi cuenta": -3,
        "en cuenta": -1.5, "cuenta de banco": -2.5, "cuenta bancaria": -2.5,
        "cuanto seria": 2, "lo que falta": 1, "hay que pagar": 1,
        "cuanto cobran": 2.5, "me cobran": 1.5, "cobro": 1.5, "cargo": 1,
        # en
        "owe": 3, "owed": 2.5, "balance": 3, "invoice": 2.5, "invoices": 2.5,
        "bill": 1.5, "fees": 1.5, "outstanding": 2, "remaining": 1.5,
        "amount": 1.5, "how much": 1, "how long": -1, "left to pay": 4,
        "up to date": 3, "statement": 2.5, "bank statement": -2.5,
        "bank statements": -2.5, "due": 1, "paid so far": 3,
        "how much do i have to": 2.5, "how much do i": 1.5,
        "how much is left": 3, "how much left": 3, "left on": 1,
        "my account": 1.5, "charge": 1, "charged": 1.5, "total": 1,
    },
    "payment": {
        # es
        "pagar": 2.5, "pagarles": 2.5, "pagarle": 2.5, "pago": 2, "pague": 2.5,
        "pagos": 1.5, "pagado": 1.5, "pagando": 2, "pagamos": 2,
        "abonar": 2.5, "abono": 2, "liquidar": 2.5, "link": 1.5, "enlace": 1.5,
        "tarjeta": 2, "credito": 1, "debito": 1, "efectivo": 2,
        "transferencia": 2.5, "deposite": 2.5, "deposito": 2, "depositar": 2.5,
        "dinero": 1.5, "cuota": 1.5, "cuotas": 1.5, "mensualidad": 2,
        "mensual": 1, "lo del mes": 2.5, "en linea": 1, "giro": 1,
        "quiero pagar": 2, "quisiera pagar": 2, "voy a pagar": 2,
        "quiero liquidar": 2, "quiero abonar": 2, "como pago": 2,
        "donde pago": 2, "ya pague": 2, "hacer un pago": 2, "hice el pago": 2,
        "aceptan": 1, "por pagar": -1, "tarjeta de trabajo": -2,
        "tarjeta de residencia": -2, "tarjeta verde": -2,
        "tarjeta de telefono": -2, "tarjetas de telefono": -2,
        "tarjeta telefonica": -2, "tarjeta de seguro": -2,
        # en / brands
        "pay": 2.5, "paid": 2.5, "paying": 2.5, "payment": 2.5,
        "payments": 1.5, "card": 1.5, "green card": -1.5, "cash": 2,
        "transfer": 1.5, "transfer me": -1.5, "money": 1.5, "money order": 2,
        "deposit": 2, "deposited": 2.5, "wire": 1.5, "online": 1,
        "monthly": 1.5, "installment": 2, "installments": 2, "zelle": 2.5,
        "venmo": 2.5, "paypal": 2.5, "cashapp": 2.5, "cash app": 2.5,
        "checkout": 2, "how do i pay": 2, "already paid": 2,
        "make a payment": 2, "payment plan": 2, "want to pay": 2,
        "like to pay": 2, "sent the money": 2, "pay stubs": -2.5,
        "pay stub": -2.5, "left to pay": -1, "phone card": -1.5,
        "phone cards": -1.5, "social security card": -1.5,
    },
    "checklist": {
        # es
        "documentos": 2.5, "documento": 2.5, "papeles": 2.5, "papeleo": 2.5,
        "lista": 1, "acta": 2.5, "actas": 2.5, "pasaporte": 2.5,
        "pasaportes": 2.5, "certificado": 2, "certificados": 2,
        "fotos": 2, "foto": 2, "fotografias": 2, "licencia": 2, "licencias": 2, "copia": 1.5,
        "copias": 1.5, "adjunto": 2, "subi": 2, "subo": 2, "subir": 2,
        "taxes": 2, "impuestos": 2, "carta": 1.5, "cartas": 1.5,
        "recibos": 1.5, "contrato": 1.5, "talones": 2.5, "evidencia": 2,
        "pruebas": 2, "formulario": 1.5, "formularios": 1.5, "firmar": 1.5,
        "archivo": 2, "archivos": 2, "escaneo": 2, "pdf": 2,
        "expediente": 1, "falta": 1.2, "faltan": 2, "falte": 1.5,
        "falta algo": 2.5, "que me falta": 2.5, "me falta": 1.5,
        "que mas": 1.5, "algo mas": 1.5, "de mi parte": 2,
        "necesitan algo": 2, "tengo que enviar": 2, "tengo que mandar": 2,
        "envie": 1, "enviar": 1, "mande": 1, "mandar": 0.8, "mando": 0.8,
        "traducida": 1.5, "traduccion": 1.5, "comprobante": 1.5,
        "identificacion": 2, "uploadie": 2.5,
        "hace falta": 2, "entregar": 1.5, "entregue": 1.5, "entrego": 1.2,
        "le mando": 1, "le envio": 1, "le paso": 1, "aqui le": 0.7,
        "ahi le": 0.7, "aqui esta": 1, "aqui estan": 1, "aqui va": 1,
        "record": 1.5, "antecedentes": 2, "cedula": 2, "partida": 2,
        "matricula": 2, "seguro social": 2, "i 94": 2.5, "i94": 2.5,
        "ocupan": 1.5, "ocupa": 1, "requisitos": 2, "traducir": 1.5,
        "escanear": 2, "declaracion": 1.5, "talon": 2,
        # en
        "documents": 2.5, "document": 2.5, "docs": 2.5, "paperwork": 2.5,
        "checklist": 3, "list": 1, "passport": 2.5, "passports": 2.5,
        "certificate": 2, "certificates": 2,
        "photos": 2, "photo": 2, "pictures": 1.5, "picture": 1.5,
        "license": 2, "copy": 1.5, "copies": 1.5, "attached": 2,
        "attaching": 2, "upload": 2.5, "uploaded": 2.5, "scan": 2,
        "scanned": 2, "tax": 1.5, "letter": 1.5, "lease": 1.5,
        "contract": 1.5, "stubs": 2.5, "paystubs": 2.5, "evidence": 2,
        "proof": 2, "records": 1.5, "form": 1.5, "forms": 1.5, "sign": 1.5,
        "signed": 1.5, "file": 1, "files": 1.5, "w2": 2, "bank statement": 3,
        "bank statements": 3, "missing": 2.5, "send": 0.5, "sent": 0.8,
        "translated": 1.5, "translation": 1.5, "what else": 2,
        "anything else": 2, "need to send": 2.5, "need from me": 2.5,
        "everything you need": 2.5, "here is my": 1.5, "heres my": 1.5,
        "you need": 1,
        "id card": 2, "social security": 2, "ss card": 2,
        "police": 1, "diploma": 2, "transcript": 2, "transcripts": 2,
        "here you go": 1, "here are": 1, "sending you": 1,
    },
    "appointments": {
        # es
        "cita": 3, "citas": 3, "entrevista": 3, "biometricos": 3,
        "biometria": 3, "huellas": 3, "corte": 2.5, "audiencia": 3,
        "plazo": 2.5, "plazo para": 1, "vence": 2, "fecha limite": 3,
        "hasta cuando": 2.5, "hasta que fecha": 2, "me toca": 1.5, "toca ir": 1, "agendar": 2.5,
        "reprogramar": 2.5, "consulta": 2.5, "reunion": 2.5, "ceremonia": 2.5,
        "juramento": 2.5, "calendario": 2, "horario": 1.5, "visita": 1.5,
        "presentarme": 1.5, "fecha": 1.5, "hora": 1, "a que hora": 1.5,
        "que dia": 1.5, "cuando": 0.8, "juez": 2, "tribunal": 2.5,
        "mover": 1, "cancelar": 1, "disponibilidad": 1.5, "espacio": 1, "tengo que ir": 1.5, "ir a la oficina": 1.5,
        "lunes": 0.5, "martes": 0.5, "miercoles": 0.5, "jueves": 0.5,
        "viernes": 0.5, "sabado": 0.5,
        # en
        "appointment": 3, "appointments": 3, "appt": 3, "interview": 3,
        "biometrics": 3, "fingerprints": 3, "fingerprint": 3, "court": 2.5,
        "hearing": 3, "deadline": 4, "deadlines": 4, "due date": 3,
        "by when": 2.5, "deadline to": 1, "deadline for": 1, "reschedule": 2.5,
        "schedule": 1.5, "book": 1, "consultation": 2.5, "meeting": 2.5,
        "oath": 2.5, "ceremony": 2.5, "calendar": 2, "date": 1,
        "what day": 1.5, "what time": 1.5, "show up": 1.5, "when": 0.8,
        "whens": 0.8, "judge": 2, "move": 0.5, "opening": 1.5,
        "openings": 1.5, "availability": 1.5, "available": 1, "monday": 0.5, "tuesday": 0.5,
        "wednesday": 0.5, "thursday": 0.5, "friday": 0.5, "saturday": 0.5,
    },
    "handoff": {
        # es
        "hablar": 1.5, "platicar": 1.5, "conversar": 1.5, "abogado": 1.5, "abogada": 1.5, "paralegal": 1.5,
        "licenciado": 1, "licenciada": 1, "persona": 1.5, "humano": 3,
        "persona equivocada": -2,
        "alguien": 1, "atender": 1.5, "atienda": 1.5, "atiendan": 1.5,
        "me atienda": 1, "que hable": 1, "agente": 3, "representante": 3, "operador": 3,
        "operadora": 3, "asesor": 2.5, "asistente": 1, "gerente": 2.5,
        "supervisor": 2.5, "llamar": 2, "llame": 2, "llamen": 2, "llamenme": 3,
        "llamame": 3, "llameme": 3, "llamada": 2, "marcar": 2, "marquen": 2,
        "marqueme": 3, "comunica": 2, "comunicar": 2, "comunicarme": 2,
        "contactar": 1.5, "pasenme": 2, "explique": 1.5, "robot": 1.5,
        "quiero hablar": 1.5, "nadie me contesta": 2, "no me responden": 2,
        "no me contestan": 2, "queja": 2, "urgente": 1, "urge": 1.5,
        # en
        "talk": 1.5, "speak": 1.5, "lawyer": 1.5, "attorney": 1.5,
        "person": 1.5, "human": 3, "someone": 1, "somebody": 1,
        "wrong person": -2,
        "agent": 3, "representative": 3, "rep": 2, "operator": 3,
        "manager": 2, "supervisor": 2.5, "call": 2, "call me": 1,
        "call back": 3, "callback": 3, "contact me": 2, "reach me": 2,
        "connect": 1.5, "transfer me": 3, "explain": 1.5, "complaint": 2,
        "real person": 1, "urgent": 1, "talk to someone": 1,
        "nobody answers": 2,
    },
    "help": {
        "ayuda": 1.5, "help": 1.5, "menu": 3, "opciones": 3, "options": 3,
        "comandos": 3, "commands": 3, "que puedo hacer": 3,
        "que puedo preguntar": 3, "como funciona": 3, "para que sirve": 3,
        "como uso": 3, "como se usa": 3, "que hace este": 2, "que haces": 2,
        "este bot": 2, "se puede hacer": 3, "usar esto": 3, "como usar": 3,
        "como lo uso": 3, "que puedes hacer": 3, "puedo preguntar": 2.5,
        "how does this": 2.5, "how this works": 3, "what can you do": 3, "what can i ask": 3,
        "how does this work": 3, "how does it work": 3, "how do i use": 3,
        "how to use": 3, "this bot": 2, "what do you do": 2,
    },
    # Greetings only count at the start of a message (see GREETING_WINDOW).
    "greeting": {
        "hola": 2, "holi": 2, "holis": 2, "ola": 2, "buenas": 2, "buenos": 1,
        "buen": 1, "dia": 0, "dias": 0, "tardes": 0, "noches": 0,
        "buen dia": 1, "buenos dias": 1, "buenas tardes": 1, "buenas noches": 1,
        "bonito dia": 1, "bonita tarde": 1, "feliz": -3, "happy": -3,
        "saludos": 2, "que tal": 2, "que onda": 1, "como esta": 1,
        "como estan": 1, "hi": 2, "hello": 2, "hey": 2, "hiya": 2,
        "howdy": 2, "yo": 0.5, "morning": 1.5, "afternoon": 1.5,
        "evening": 1.5, "good morning": 0.5, "good afternoon": 0.5,
        "good evening": 0.5, "how are you": 1, "hope youre well": 1,
    },
}

# "How much ... pay / pending / left" is a balance question even though it
# names the payment verb ("cuánto hay que pagar", "how much do we pay"):
# an amount word followed within AMOUNT_WINDOW tokens by one of AMOUNT_TARGETS
# adds AMOUNT_BONUS to balance.
AMOUNT_WORDS = frozenset({"cuanto", "cuanta", "much"})
AMOUNT_TARGETS = frozenset({
    "pagar", "pago", "pagarle", "pagarles", "pendiente", "queda", "quedan",
    "debo", "total", "cobran", "cobrar", "pay", "left", "owe", "due",
    "remaining", "outstanding",
})
AMOUNT_BLOCKERS = frozenset({"tiempo", "long", "meses", "dias", "semanas"})
AMOUNT_WINDOW = 5
AMOUNT_BONUS = 2.0

# Greeting words further than this many tokens from the start are ignored
# ("mi vecino dice que ustedes son muy buenos" is not a greeting).
GREETING_WINDOW = 3

# Minimum score for a non-greeting intent to win.
THRESHOLD = 1.5

# Ties are broken by this order (more actionable / safer first).
PRIORITY = ("handoff", "appointments", "payment", "balance", "checklist",
            "status", "help")

# Frequent words that must never be "typo-corrected" into a keyword.
COMMON_WORDS = frozenset("""
    listo lista casos cosas cuenta cuesta cuantas estas estoy estan estado
    hable hablo habla hablan llego llega llegue entre entro todos todas
    tienen tiene pague pagues nadie noche noches manana semana gracias
    where there their these those thing think thank thanks those while whole
    where which world would could should about after again below above
    state start stars store story other others under until since first
    carta cartel parte partes vista visas visa costo costos perdon perdone
    disculpe disculpa favor gusto bueno buena buenos buenas saludo saludos
    mucho mucha muchos muchas mismo misma ahora antes despues luego siempre
    nunca donde cuando porque quiero quiere quieren puedo puede pueden tengo
    tenga tengan hacer hecho dicho decir dijeron sabes saber saben estaba
    estamos somos eres fueron seria podria deberia necesita necesitan nuevo
    nueva otros otras tambien todavia mientras contra hasta desde sobre entonces
    partido partidos
    gente persona personas trabajo trabajos familia esposo esposa hijos hijas
    please sorry hello every other never always maybe really right great
    good night today later wrong number email phone house money people person
    going doing being having would should could might there where these
    those their about above again still their thing things since first
""".split())

# Chat abbreviations expanded before lookup.
SLANG = {
    "q": "que", "ke": "que", "xq": "porque", "pq": "porque", "porq": "porque",
    "xfa": "porfavor", "xfavor": "porfavor", "tmb": "tambien", "d": "de",
    "pa": "para", "u": "you", "ur": "your", "r": "are", "pls": "please",
    "plz": "please", "thx": "thanks", "appt": "appointment", "msg": "message",
    "msgs": "messages", "msjs": "mensajes", "msj": "mensaje",
}

# Spanish spelling confusions tried (one rule at a time) before edit distance:
# "devo" -> "debo", "ablar" -> "hablar", "kuanto" -> "cuanto", "yamar" -> "llamar".
PHONETIC_SWAPS = (
    ("v", "b"), ("b", "v"), ("z", "s"), ("s", "c"), ("c", "s"), ("s", "z"),
    ("y", "ll"), ("ll", "y"), ("k", "c"), ("k", "qu"), ("qu", "k"),
    ("j", "g"), ("g", "j"), ("x", "s"),
)

# ---------------------------------------------------------------------------
# Logic
# ---------------------------------------------------------------------------

def _raw_tokens(text: str) -> list[str]:
    return words(text)


def _units(spec: str) -> list[tuple[str, ...]]:
    return [tuple(u.split()) for u in spec.split("|") if u.strip()]


_ACK_CORE_UNITS = frozenset(_units(ACK_CORE))
_ACK_UNITS = frozenset(_units(ACK_EXTRA)) | _ACK_CORE_UNITS
_ACK_INDEX: dict[str, list[tuple[str, ...]]] = {}
for _u in sorted(_ACK_UNITS, key=len, reverse=True):
    _ACK_INDEX.setdefault(_u[0], []).append(_u)


def _build_tables():
    """Phrase index (first token -> [(tokens, intent, weight)]) and vocabulary."""
    index: dict[str, list[tuple[tuple[str, ...], str, float]]] = {}
    vocab: set[str] = set()
    for intent, table in KEYWORDS.items():
        for phrase, weight in table.items():
            toks = tuple(phrase.split())
            vocab.update(toks)
            index.setdefault(toks[0], []).append((toks, intent, float(weight)))
    for kw in OPT_OUT_KEYWORDS | OPT_IN_KEYWORDS | HELP_KEYWORDS:
        vocab.update(kw.split())
    for phrase in _ACK_UNITS:
        vocab.update(w for w in phrase if len(w) >= 5)
    # Intents each single word is a (positive) keyword of.
    word_intents: dict[str, set[str]] = {}
    for intent, table in KEYWORDS.items():
        for phrase, weight in table.items():
            if weight > 0 and " " not in phrase:
                word_intents.setdefault(phrase, set()).add(intent)
    # Longest phrases first so the scan is deterministic.
    for entries in index.values():
        entries.sort(key=lambda e: -len(e[0]))
    # Symmetric-delete index for edit distance 1 on words of 5+ letters.
    deletes: dict[str, set[str]] = {}
    for word in vocab:
        if len(word) >= 5 and word.isalpha():
            deletes.setdefault(word, set()).add(word)
            for i in range(len(word)):
                deletes.setdefault(word[:i] + word[i + 1:], set()).add(word)
    frozen = {w: frozenset(i) for w, i in word_intents.items()}
    return index, frozenset(vocab), deletes, frozen


_INDEX, _VOCAB, _DELETES, _WORD_INTENTS = _build_tables()


def _any_of(patterns) -> re.Pattern:
    """One alternation instead of a loop over patterns (about 2x faster)."""
    return re.compile("|".join(f"(?:{p})" for p in patterns))


_OPT_OUT_RE = _any_of(OPT_OUT_PATTERNS)
_OPT_IN_RE = _any_of(OPT_IN_PATTERNS)
_NOT_OPT_OUT_RE = _any_of(NOT_OPT_OUT_PATTERNS)
_SWITCH_RE = _any_of(SWITCH_MATTER_PATTERNS)
_NO_QUIERO_RE = re.compile(r"\bno (quiero|deseo)\b")


def _within_one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance <= 1 (adjacent transposition allowed)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (len(diff) == 2 and diff[1] == diff[0] + 1
                and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]


@lru_cache(maxsize=8192)
def _canon(tok: str) -> str:
    """Map a raw token onto the keyword vocabulary when it is a variant of one."""
    tok = SLANG.get(tok, tok)
    if tok in _VOCAB:
        return tok
    two = re.sub(r"(.)\1{2,}", r"\1\1", tok)
    if two in _VOCAB:
        return two
    one = re.sub(r"(.)\1+", r"\1", tok)
    if one in _VOCAB:
        return one
    if two in COMMON_WORDS or not two.isalpha():
        return two
    for wrong, right in PHONETIC_SWAPS:
        if wrong in two:
            variant = two.replace(wrong, right)
            if variant in _VOCAB:
                return variant
    if ("h" + two) in _VOCAB:
        return "h" + two
    if len(two) < 5:
        return two
    candidates: set[str] = set(_DELETES.get(two, ()))
    for i in range(len(two)):
        candidates |= _DELETES.get(two[:i] + two[i + 1:], set())
    # Typos rarely hit the first letter; requiring it avoids "sending" -> "pending".
    matches = sorted(w for w in candidates
                     if w[0] == two[0] and _within_one_edit(two, w))
    if len(matches) == 1:
        return matches[0]
    # Several equally close words ("documentso" -> documento / documentos):
    # harmless when they all mean the same intents; prefer the same length.
    if matches and len({_WORD_INTENTS.get(w, frozenset()) for w in matches}) == 1:
        same_len = [w for w in matches if len(w) == len(two)]
        return (same_len or matches)[0]
    return two


def normalize(text: str) -> list[str]:
    """Lowercase, accent-free, typo-tolerant tokens of ``text``."""
    return [_canon(t) for t in _raw_tokens(text)]


def _keyword_match(tokens: list[str], keywords: frozenset[str]) -> bool:
    core = [t for t in tokens if t not in FILLER]
    if not core:
        return False
    joined = " ".join(core)
    if joined in keywords:
        return True
    # Repeated keyword ("stop stop", "STOP!!! STOP")
    return len(set(core)) == 1 and core[0] in keywords


def _is_acknowledgement(tokens: list[str], text: str) -> bool:
    """Only acknowledgement units (plus at most a name after a "thank you")."""
    if "?" in text or "¿" in text:
        return False
    core = gratitude = False
    leftover: list[str] = []
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        for unit in _ACK_INDEX.get(tok, ()):
            k = len(unit)
            if k == 1 or tuple(tokens[i:i + k]) == unit:
                if unit in _ACK_CORE_UNITS:
                    core = True
                    gratitude = gratitude or not GRATITUDE.isdisjoint(unit)
                i += k
                break
        else:
            if not _LAUGH.match(tok):
                leftover.append(tok)
                if len(leftover) > 1:
                    return False
            i += 1
    if not core:
        return False
    if not leftover:
        return True
    # "gracias Maria", "thanks Jose": one extra word that means nothing else.
    name = leftover[0]
    return (gratitude and len(name) >= 3 and name.isalpha() and name not in _VOCAB
            and name not in COMMON_WORDS and name not in NOT_NAMES)


def _scores(tokens: list[str]) -> dict[str, float]:
    scores: dict[str, float] = {}
    for i, tok in enumerate(tokens):
        for phrase, intent, weight in _INDEX.get(tok, ()):
            if intent == "greeting" and i >= GREETING_WINDOW:
                continue
            k = len(phrase)
            if k == 1 or tuple(tokens[i:i + k]) == phrase:
                scores[intent] = scores.get(intent, 0.0) + weight
        if tok in AMOUNT_WORDS:
            window = tokens[i + 1:i + 1 + AMOUNT_WINDOW]
            if (not AMOUNT_BLOCKERS.intersection(window)
                    and AMOUNT_TARGETS.intersection(window)):
                scores["balance"] = scores.get("balance", 0.0) + AMOUNT_BONUS
    return scores


def classify_intent(text: str, language: str | None = None) -> str:
    """One of INTENTS for free text in either language.

    ``language`` is accepted as a hint but both keyword tables are always
    consulted, because clients mix languages ("quiero pagar my invoice").
    """
    if not text or not text.strip():
        return "unknown"
    tokens = normalize(text)
    if not tokens:
        # Emoji-only: a thumbs-up / praying hands is an acknowledgement.
        if any(c in ACK_EMOJI for c in text):
            return "thanks"
        return "unknown"

    # 1. Carrier keywords (whole message).
    if _keyword_match(tokens, OPT_OUT_KEYWORDS):
        return "opt_out"
    if _keyword_match(tokens, OPT_IN_KEYWORDS):
        return "opt_in"
    if _keyword_match(tokens, HELP_KEYWORDS):
        return "help"

    # 2. Plain-language opt-out / opt-in.
    flat = " ".join(tokens)
    if _OPT_IN_RE.search(flat) and not _NO_QUIERO_RE.search(flat):
        return "opt_in"
    if _OPT_OUT_RE.search(flat) and not _NOT_OPT_OUT_RE.search(flat):
        return "opt_out"

    # 3. Pure acknowledgement ("ok gracias 👍"); a request alongside it
    #    ("gracias, cuánto debo?") falls through to the keyword scores.
    if _is_acknowledgement(tokens, text):
        return "thanks"

    # 4. Another matter ("mi otro caso"), then 5. weighted keywords.
    scores = _scores(tokens)
    greeting = scores.pop("greeting", 0.0)
    if _SWITCH_RE.search(flat):
        best = max(scores.values(), default=0.0)
        if not (best >= THRESHOLD and any(
                scores.get(i) == best for i in SWITCH_MATTER_YIELDS_TO)):
            return "switch_matter"
    if scores:
        best = max(scores.values())
        if best >= THRESHOLD:
            for intent in PRIORITY:
                if scores.get(intent) == best:
                    return intent
    if greeting > 0:
        return "greeting"
    return "unknown"
