"""The words of the admin page and the public pages, in English and French."""

from __future__ import annotations

from collections.abc import Callable

LOCALES = ("en", "fr")
WORDS: dict[str, tuple[str, str]] = {
    # the admin page
    "admin": ("Briefing admin", "Administration du briefing"),
    "admin_off": ("The admin page is off", "La page d'administration est désactivée"),
    "admin_off_why": (
        "Set BRIEFING_API_TOKEN to turn it on, then sign in with that token.",
        "Définissez BRIEFING_API_TOKEN pour l'activer, puis connectez-vous avec ce jeton.",
    ),
    "sign_in": ("Sign in", "Se connecter"),
    "sign_out": ("Sign out", "Se déconnecter"),
    "token": ("API token", "Jeton d'API"),
    "wrong_token": ("Wrong token.", "Jeton incorrect."),
    "expired_form": (
        "This form has expired or was not sent by this page; try again.",
        "Ce formulaire a expiré ou ne vient pas de cette page ; réessayez.",
    ),
    "subscriptions": ("Subscriptions", "Abonnements"),
    "no_subscriptions": ("No subscriptions yet.", "Aucun abonnement pour l'instant."),
    "deliveries": ("Delivery log", "Journal des envois"),
    "no_deliveries": ("No deliveries.", "Aucun envoi."),
    "preview": ("Preview", "Aperçu"),
    "add": ("Add a subscription", "Ajouter un abonnement"),
    "kind": ("Kind", "Type"),
    "address": ("Webhook URL or email address", "URL du webhook ou adresse e-mail"),
    "secret": (
        "Signing secret (generic webhooks; default: a new one)",
        "Secret de signature (webhooks génériques ; par défaut : un nouveau)",
    ),
    "topics": ("Topics", "Thèmes"),
    "topics_hint": ("comma-separated; empty: all", "séparés par des virgules ; vide : tous"),
    "all_topics": ("all", "tous"),
    "locale": ("Language", "Langue"),
    "timezone": ("Timezone", "Fuseau horaire"),
    "at": ("Daily at", "Chaque jour à"),
    "name": ("Name", "Nom"),
    "create": ("Add", "Ajouter"),
    "id": ("Id", "N°"),
    "target": ("Target", "Destination"),
    "status": ("Status", "État"),
    "schedule": ("Schedule", "Horaire"),
    "next": ("Next digest", "Prochain bulletin"),
    "last": ("Last delivery", "Dernier envoi"),
    "actions": ("Actions", "Actions"),
    "never": ("never", "jamais"),
    "pause": ("Pause", "Suspendre"),
    "resume": ("Resume", "Reprendre"),
    "remove": ("Remove", "Supprimer"),
    "test": ("Send test", "Envoyer un test"),
    "send": ("Send now", "Envoyer maintenant"),
    "active": ("active", "actif"),
    "paused": ("paused", "suspendu"),
    "removed": ("removed", "supprimé"),
    "created": ("Subscription {id} added.", "Abonnement {id} ajouté."),
    "secret_once": (
        "Signing secret (shown once, keep it):",
        "Secret de signature (affiché une fois, gardez-le) :",
    ),
    "now_status": (
        "Subscription {id} is now {status}.",
        "L'abonnement {id} est maintenant {status}.",
    ),
    "test_result": ("Test to subscription {id}: {result}", "Test de l'abonnement {id} : {result}"),
    "send_result": ("Send to subscription {id}: {result}", "Envoi à l'abonnement {id} : {result}"),
    "failed": ("failed", "échec"),
    "delivered": ("delivered", "délivré"),
    "period": ("Period", "Période"),
    "trigger": ("Trigger", "Déclencheur"),
    "attempts": ("Tries", "Essais"),
    "answer": ("Receiver's answer or error", "Réponse du destinataire ou erreur"),
    "subscription": ("Subscription", "Abonnement"),
    "any": ("any", "tous"),
    "filter": ("Filter", "Filtrer"),
    "channel": ("Channel", "Canal"),
    "show": ("Show", "Afficher"),
    "email_html": ("The HTML email", "L'e-mail HTML"),
    "problem": ("Problem", "Problème"),
    # the public pages
    "subscribe_title": ("Get the daily briefing", "Recevoir le briefing quotidien"),
    "subscribe_intro": (
        "One short, sourced briefing a day on the US–Russia–Ukraine peace talks, by email.",
        "Un bulletin court et sourcé par jour sur les négociations de paix entre les "
        "États-Unis, la Russie et l'Ukraine, par e-mail.",
    ),
    "email": ("Email address", "Adresse e-mail"),
    "hour": ("Hour (your timezone)", "Heure (votre fuseau)"),
    "subscribe": ("Subscribe", "S'abonner"),
    "check_inbox": ("Check your inbox", "Consultez votre boîte de réception"),
    "check_inbox_text": (
        "If this address can be subscribed, a message with a confirmation link is on its "
        "way. The link works for 48 hours.",
        "Si cette adresse peut être abonnée, un message avec un lien de confirmation est en "
        "route. Le lien est valable 48 heures.",
    ),
    "too_many": ("Too many requests; try again later.", "Trop de demandes ; réessayez plus tard."),
    "not_sent": (
        "The confirmation email could not be sent; try again later.",
        "Le message de confirmation n'a pas pu être envoyé ; réessayez plus tard.",
    ),
    "confirm_title": ("Confirm your subscription", "Confirmez votre abonnement"),
    "confirm_text": (
        "Confirm that {email} should receive the daily briefing.",
        "Confirmez que {email} doit recevoir le briefing quotidien.",
    ),
    "confirm": ("Confirm", "Confirmer"),
    "confirmed_title": ("You are subscribed", "Vous êtes abonné"),
    "confirmed_text": (
        "The briefing will be sent to {email}.",
        "Le briefing sera envoyé à {email}.",
    ),
    "unknown_link": ("Unknown or expired link", "Lien inconnu ou expiré"),
    "unknown_link_text": (
        "This link does not work (any more). Confirmation links work for 48 hours: ask "
        "again on the sign-up page.",
        "Ce lien ne fonctionne pas (ou plus). Les liens de confirmation sont valables 48 "
        "heures : refaites la demande sur la page d'inscription.",
    ),
    "preferences": ("Your preferences", "Vos préférences"),
    "preferences_for": ("For {email}.", "Pour {email}."),
    "save": ("Save", "Enregistrer"),
    "saved": ("Your preferences are saved.", "Vos préférences sont enregistrées."),
    "leave": ("Leave: send me nothing more", "Me désabonner : ne plus rien m'envoyer"),
    "left_title": ("You are unsubscribed", "Désabonnement confirmé"),
    "left_text": (
        "No more briefings will be sent to {email}.",
        "Plus aucun briefing ne sera envoyé à {email}.",
    ),
    "mail_subject": (
        "Confirm your briefing subscription",
        "Confirmez votre abonnement au briefing",
    ),
    "mail_text": (
        "Someone (probably you) asked for the daily briefing to be sent to {email}.\n\n"
        "To confirm, open this link within 48 hours:\n{link}\n\n"
        "If it was not you, ignore this message: nothing will be sent.",
        "Quelqu'un (sans doute vous) a demandé que le briefing quotidien soit envoyé à "
        "{email}.\n\nPour confirmer, ouvrez ce lien dans les 48 heures :\n{link}\n\n"
        "Si ce n'était pas vous, ignorez ce message : rien ne sera envoyé.",
    ),
}


def translator(locale: str) -> Callable[..., str]:
    """``t(key, **values)``: the words of ``key`` in ``locale`` (English if unknown)."""
    index = 1 if locale == "fr" else 0

    def t(key: str, **values: object) -> str:
        text = WORDS[key][index]
        return text.format(**values) if values else text

    return t
