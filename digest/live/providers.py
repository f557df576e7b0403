"""The mail providers an editor is likely to have, by the domain of their address: the
documented SMTP submission and IMAP servers, whether they deliver plus addresses, the
password a program needs, how much they let one account send a day, and the name their
receiving servers write first in the Authentication-Results they add. No I/O here:
`digest init` (the mailbox's address, or its MX hosts for a domain of one's own),
`digest doctor` (the relay's host) and approve by reply (the mailbox's address, or its
IMAP server) look a provider up.

The figures were checked against each provider's own pages (named beside each); a
provider changes them without notice, so the doctor says where a figure comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
BULK_LINE = 5_000
"""Google's Email sender guidelines: whoever sends close to 5,000 messages a day to personal
Gmail accounts is a bulk sender for good, and must then offer one-click unsubscribe (RFC 8058:
an https link digest answers, so a public base_url) (support.google.com/a/answer/14229414)."""
GOOGLE_AUTHSERV = "mx.google.com"
"""What Google's receiving servers (Gmail's and Workspace's) write first in the
Authentication-Results they add (`Authentication-Results: mx.google.com; dkim=pass ...`), as
Show original shows it. No other provider's name is set here: none could be confirmed from
its own documentation, so `[mailbox] authserv_id` must name it."""
AUTHSERV_HOW = ("open a mail you received in the mailbox, show its original, and copy the first word after "
                "Authentication-Results:")
"""How the editor finds the name for `[mailbox] authserv_id` (the doctor and approve by reply say it)."""
LIST_RELAY = 'a relay made for lists: SendGrid ([sending] backend = "sendgrid", see docs/going-live.md)'


@dataclass(frozen=True)
class Provider:
    key: str
    name: str
    domains: tuple[str, ...]          # addresses at these domains are this provider's own
    mx: tuple[str, ...]               # MX hosts (or their suffixes) of a domain of one's own hosted here
    smtp_host: str
    smtp_port: int
    smtp_security: str                # "tls" (implicit, 465) or "starttls" (587)
    imap_host: str
    imap_port: int
    plus_addresses: bool | None       # documented; None: not documented, the doctor's probe decides
    daily_limit: int | None           # messages (one recipient each) a day; None: not published
    limit_source: str                 # where the figure comes from
    password: str                     # what to create for digest, and where
    move_to: str                      # where a list that outgrows daily_limit goes
    spf_include: str = ""             # the include: SPF names for a domain of one's own sending here
    dkim_selectors: tuple[str, ...] = ()
    caveat: str = ""                  # what stops digest from using it as it is
    authserv_id: str = ""             # its receiving servers' name in Authentication-Results; "": not documented

    def owns(self, domain: str) -> bool:
        """Whether domain is the provider's own (gmail.com): it publishes SPF, signs DKIM and
        sets DMARC for it, and there is nothing for the editor to publish."""
        return domain.lower().rstrip(".") in self.domains

    def limit_line(self) -> str:
        if self.daily_limit is None:
            return f"{self.name} publishes no daily sending limit ({self.limit_source})"
        return f"{self.name}'s limit of {self.daily_limit:,} messages a day ({self.limit_source})"


GMAIL = Provider(
    "gmail", "Gmail", GMAIL_DOMAINS, (), "smtp.gmail.com", 587, "starttls", "imap.gmail.com", 993,
    plus_addresses=True,            # Gmail delivers yourname+anything@gmail.com to yourname@gmail.com
    daily_limit=500,                # support.google.com/mail/answer/22839: 500 recipients a day, personal accounts
    limit_source="support.google.com/mail/answer/22839",
    password="turn on 2-Step Verification for the Google account, then create an app password at "
             "https://myaccount.google.com/apppasswords (the same one serves IMAP and SMTP)",
    move_to=f"Google Workspace (2,000 a day through the same smtp.gmail.com), or {LIST_RELAY}",
    authserv_id=GOOGLE_AUTHSERV,
)

WORKSPACE = Provider(
    "workspace", "Google Workspace", (), ("aspmx.l.google.com", ".google.com", ".googlemail.com"),
    "smtp.gmail.com", 587, "starttls", "imap.gmail.com", 993,
    plus_addresses=True,            # Workspace delivers user+tag@domain as Gmail does
    daily_limit=2_000,              # support.google.com/a/answer/166852: 2,000 a day (500 for trial accounts)
    limit_source="support.google.com/a/answer/166852; 500 during a trial",
    password="turn on 2-Step Verification for the account (your admin may have to allow it), then create an "
             "app password at https://myaccount.google.com/apppasswords",
    move_to="Google's SMTP relay service (smtp-relay.gmail.com: 10,000 recipients a day per user, set up by "
            f"your Workspace admin), or {LIST_RELAY}",
    spf_include="_spf.google.com",
    dkim_selectors=("google",),     # the Admin console's default selector
    authserv_id=GOOGLE_AUTHSERV,
)

FASTMAIL = Provider(
    "fastmail", "Fastmail", ("fastmail.com", "fastmail.fm"), (".messagingengine.com",),
    "smtp.fastmail.com", 465, "tls", "imap.fastmail.com", 993,   # fastmail.com/help/technical/servernamesandports.html
    plus_addresses=True,            # Fastmail documents plus addressing (and subdomain addressing)
    daily_limit=None,               # the account limits page gives no figure for paid plans; trials: 120 a day
    limit_source="fastmail.help: trial accounts 120 a day; the Basic plan has no IMAP or SMTP",
    password="create an app password with Mail access (Settings > Privacy & Security > Manage app passwords); "
             "Fastmail refuses your usual password over IMAP and SMTP",
    move_to=LIST_RELAY,
    spf_include="spf.messagingengine.com",
    dkim_selectors=("fm1", "fm2", "fm3"),
)

OUTLOOK = Provider(
    "outlook", "Outlook.com", ("outlook.com", "hotmail.com", "live.com"), (),
    "smtp-mail.outlook.com", 587, "starttls", "outlook.office365.com", 993,
    plus_addresses=True,            # Outlook.com delivers plus addresses
    daily_limit=300,                # 300 a day for a free account (msoutlook.info/question/235, Microsoft's
                                    # community answers); Microsoft's own page gives no fixed figure
    limit_source="free accounts, as Microsoft's support answers say; new accounts lower",
    password="Microsoft takes no password for IMAP and SMTP from other programs",
    move_to=LIST_RELAY,
    caveat="since 16 September 2024 Outlook.com lets other programs in only with Microsoft's OAuth sign-in, "
           "which digest does not do: its IMAP and SMTP logins will be refused. Use a Gmail or Fastmail mailbox "
           "instead",
)

ICLOUD = Provider(
    "icloud", "iCloud Mail", ("icloud.com", "me.com", "mac.com"), (),
    "smtp.mail.me.com", 587, "starttls", "imap.mail.me.com", 993,    # Apple's iCloud Mail server settings
    plus_addresses=None,            # not in Apple's pages; the doctor's probe finds out
    daily_limit=1_000,              # support.apple.com/102198: 1,000 messages and 1,000 recipients a day
    limit_source="support.apple.com/102198",
    password="turn on two-factor authentication for the Apple Account, then create an app-specific password at "
             "https://account.apple.com (Sign-In and Security)",
    move_to=LIST_RELAY,
)

YAHOO = Provider(
    "yahoo", "Yahoo Mail", ("yahoo.com", "ymail.com"), (),
    "smtp.mail.yahoo.com", 465, "tls", "imap.mail.yahoo.com", 993,
    plus_addresses=False,           # Yahoo's own scheme is disposable addresses (base-keyword), made one by one
    daily_limit=500,                # help.yahoo.com SLN17518 (Yahoo's business mail): 500 a day; none for free
    limit_source="help.yahoo.com SLN17518; Yahoo publishes no figure for free accounts",
    password="create an app password (Account Info > Account Security > Generate app password)",
    move_to=LIST_RELAY,
)

PROVIDERS = (GMAIL, WORKSPACE, FASTMAIL, OUTLOOK, ICLOUD, YAHOO)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".")


def by_address(address: str) -> Provider | None:
    """The provider whose own domain the address is at (gmail.com: Gmail)."""
    domain = domain_of(address)
    return next((p for p in PROVIDERS if domain in p.domains), None)


def by_mx(hosts: list[str]) -> Provider | None:
    """The provider that hosts a domain of one's own, from the domain's MX hosts
    (aspmx.l.google.com: Google Workspace; in1-smtp.messagingengine.com: Fastmail)."""
    for host in (h.lower().rstrip(".") for h in hosts):
        for provider in PROVIDERS:
            if any(host == mx or (mx.startswith(".") and host.endswith(mx)) for mx in provider.mx):
                return provider
    return None


def by_relay(host: str, username: str) -> Provider | None:
    """The provider whose SMTP submission server host is; smtp.gmail.com is Gmail's for a
    gmail.com account and Google Workspace's for any other."""
    host = host.lower().rstrip(".")
    found = [p for p in PROVIDERS if p.smtp_host == host]
    if not found:
        return None
    owner = by_address(username) if "@" in username else None
    return owner if owner in found else next((p for p in found if not p.domains), found[0])


def receiving(address: str, imap_host: str) -> Provider | None:
    """The provider whose servers receive the mailbox's mail: the one whose own domain its
    address is at (gmail.com), else the one whose IMAP server it is read from (imap.gmail.com
    for a domain of one's own: Google Workspace)."""
    owner = by_address(address)
    if owner is not None:
        return owner
    host = imap_host.lower().rstrip(".")
    found = [p for p in PROVIDERS if host and p.imap_host == host]
    return next((p for p in found if not p.domains), found[0] if found else None)


def authserv_id(configured: str, address: str, imap_host: str) -> tuple[str, str]:
    """The authserv-id a reply's topmost Authentication-Results must carry to be believed,
    and where it comes from: `[mailbox] authserv_id` when set, else the receiving provider's
    documented name; ("", "") when neither is known."""
    if configured:
        return configured, "[mailbox] authserv_id"
    provider = receiving(address, imap_host)
    if provider is not None and provider.authserv_id:
        return provider.authserv_id, f"{provider.name}'s receiving servers"
    return "", ""
