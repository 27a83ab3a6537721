"""IMAP folders: the ordered tree, special uses, counts; create, rename, delete.

Every function takes a logged-in ``IMAPClient``; the caller owns the connection.
Folder names are the server's full names decoded from modified UTF-7; they are
the identity of a folder everywhere above this module (URLs included).

The hierarchy delimiter always comes from the server's LIST answers. Counts come
from one ``LIST ... RETURN (STATUS (MESSAGES UNSEEN))`` when the server has
LIST-STATUS (RFC 5819), else from one STATUS per selectable folder.
"""

from __future__ import annotations

import imaplib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from django.utils.translation import gettext as _
from imapclient import IMAPClient, imap_utf7
from imapclient.exceptions import IMAPClientError
from imapclient.response_parser import parse_response

from mailbox.sources import Folder, SpecialUse

# A Maildir++ server (Dovecot, Courier) keeps the whole encoded name in one
# directory name, and file systems stop at 255 bytes.
MAX_NAME_BYTES = 250
MAX_LEAF_LENGTH = 100
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f*%]")  # controls, LIST wildcards


class FolderError(ValueError):
    """A folder operation refused, by us or by the server; ``str()`` is for the user."""


# RFC 6154 attributes (lower case, as compared).
_ATTRIBUTE_USES = {
    "\\sent": SpecialUse.SENT,
    "\\drafts": SpecialUse.DRAFTS,
    "\\trash": SpecialUse.TRASH,
    "\\junk": SpecialUse.JUNK,
    "\\archive": SpecialUse.ARCHIVE,
    "\\all": SpecialUse.ALL,
    "\\flagged": SpecialUse.FLAGGED,
}

# Where special folders go, after INBOX; everything else after them.
_USE_ORDER = {
    SpecialUse.INBOX: 0,
    SpecialUse.DRAFTS: 1,
    SpecialUse.SENT: 2,
    SpecialUse.ARCHIVE: 3,
    SpecialUse.JUNK: 4,
    SpecialUse.TRASH: 5,
    SpecialUse.ALL: 6,
    SpecialUse.FLAGGED: 7,
}
_OTHER = len(_USE_ORDER)

# Names that mean a special use on servers without SPECIAL-USE, most likely
# first: when two folders match one use, the earlier name wins.
_FALLBACK_NAMES: dict[SpecialUse, tuple[str, ...]] = {
    SpecialUse.SENT: (
        "Sent",
        "Sent Items",
        "Sent Messages",
        "Sent Mail",
        "Envoyés",
        "Éléments envoyés",
        "Gesendet",
        "Gesendete Objekte",
        "Enviados",
        "Inviati",
        "Posta inviata",
        "Verzonden",
        "Verzonden items",
    ),
    SpecialUse.TRASH: (
        "Trash",
        "Deleted Items",
        "Deleted Messages",
        "Corbeille",
        "Éléments supprimés",
        "Papierkorb",
        "Gelöschte Objekte",
        "Papelera",
        "Cestino",
        "Prullenbak",
        "Verwijderde items",
    ),
    SpecialUse.DRAFTS: (
        "Drafts",
        "Brouillons",
        "Entwürfe",
        "Borradores",
        "Bozze",
        "Concepten",
    ),
    SpecialUse.JUNK: (
        "Junk",
        "Spam",
        "Junk E-mail",
        "Junk Email",
        "Courrier indésirable",
        "Indésirables",
        "Spam-Verdacht",
        "Junk-E-Mail",
        "Correo no deseado",
        "Posta indesiderata",
        "Ongewenste e-mail",
    ),
    SpecialUse.ARCHIVE: ("Archive", "Archives", "Archiv", "Archivio", "Archief"),
}


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


_FALLBACKS: dict[str, tuple[SpecialUse, int]] = {
    _fold(name): (use, rank)
    for use, names in _FALLBACK_NAMES.items()
    for rank, name in enumerate(names)
}


def special_use_for_name(name: str, delimiter: str | None) -> SpecialUse | None:
    """The special use a folder name suggests, for servers without SPECIAL-USE.

    ``INBOX`` (any case) is the inbox. Known names in several languages count at
    the top level and directly below INBOX (``INBOX.Sent``, Courier-style).
    """
    return _fallback(name, delimiter)[0]


def _fallback(name: str, delimiter: str | None) -> tuple[SpecialUse | None, int]:
    if name.upper() == "INBOX":
        return SpecialUse.INBOX, 0
    leaf = name
    if delimiter:
        prefix = "INBOX" + delimiter
        if name[: len(prefix)].upper() == prefix:
            leaf = name[len(prefix) :]
        if delimiter in leaf:
            return None, 0
    return _FALLBACKS.get(_fold(leaf), (None, 0))


_NaturalKey = tuple[list[str | int], str]


def _natural_key(text: str) -> _NaturalKey:
    """Case- and accent-insensitive, numbers by value ("Folder 2" < "Folder 10")."""
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    ).casefold()
    # re.split with one group alternates text and digits: positions compare
    # str with str and int with int.
    parts: list[str | int] = [
        int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", plain))
    ]
    return parts, text  # the name itself breaks ties between case variants


# -- reading the server ----------------------------------------------------


@dataclass(frozen=True)
class _Listed:
    name: str
    delimiter: str | None
    attributes: frozenset[str]  # lower case


def _decode_name(raw: object) -> str:
    if isinstance(raw, int):  # a quoted number, parsed as one
        return str(raw)
    if not isinstance(raw, bytes):
        return str(raw)
    try:
        return imap_utf7.decode(raw)
    except (UnicodeError, ValueError):
        return raw.decode("utf-8", "replace")


def _decode_delimiter(raw: object) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        return raw.decode("ascii", "replace") or None
    return str(raw) or None


def _responses(data: Iterable[object]) -> list[list[object]]:
    """Group imaplib's untagged data into responses.

    imaplib stores a line with a literal as ``(text, literal)`` and the rest
    of that line as the next item, so an item after a tuple continues it.
    """
    groups: list[list[object]] = []
    after_literal = False
    for item in data:
        if item is None:
            continue
        if after_literal and groups:
            groups[-1].append(item)
        else:
            groups.append([item])
        after_literal = isinstance(item, tuple)
    return groups


def _parse_list(data: Iterable[object]) -> list[_Listed]:
    listed = []
    for group in _responses(data):
        if group == [b""]:
            continue
        parsed = parse_response(group)
        attributes, delimiter, name = parsed[0], parsed[1], parsed[2]
        listed.append(
            _Listed(
                _decode_name(name),
                _decode_delimiter(delimiter),
                frozenset(_as_text(a).lower() for a in attributes or ()),
            )
        )
    return listed


def _parse_status(data: Iterable[object]) -> dict[str, tuple[int | None, int | None]]:
    counts = {}
    for group in _responses(data):
        if group == [b""]:
            continue
        parsed = parse_response(group)
        name, items = parsed[0], parsed[-1]
        counts[_decode_name(name)] = _counts(items)
    return counts


def _counts(items: object) -> tuple[int | None, int | None]:
    values: dict[str, object] = {}
    pairs = list(items) if isinstance(items, tuple | list) else []
    for key, value in zip(pairs[::2], pairs[1::2], strict=False):
        values[_as_text(key).upper()] = value
    total, unseen = values.get("MESSAGES"), values.get("UNSEEN")
    return (
        total if isinstance(total, int) else None,
        unseen if isinstance(unseen, int) else None,
    )


def _as_text(value: object) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _extended_list(
    client: IMAPClient, *, status: bool
) -> tuple[list[_Listed], dict[str, tuple[int | None, int | None]]]:
    """One LIST-EXTENDED (RFC 5258) command, with STATUS items if asked.

    imapclient has no helper for RETURN options, so this goes to imaplib, and
    takes its LIST and STATUS responses out of imaplib's store (left there, a
    later ``list_folders`` of imapclient would return them again).
    """
    options = ["CHILDREN"]
    if client.has_capability("SPECIAL-USE"):
        options.append("SPECIAL-USE")
    if status:
        options.append("STATUS (MESSAGES UNSEEN)")
    imap = client._imap
    try:
        typ, data = imap._simple_command(
            "LIST", '""', '"*"', "RETURN", "(" + " ".join(options) + ")"
        )
        if typ != "OK":
            raise IMAPClientError(f"LIST failed: {_as_text(data[0] if data else '')}")
        listing = imap.untagged_responses.get("LIST", [])
        statuses = imap.untagged_responses.get("STATUS", [])
        return _parse_list(listing), _parse_status(statuses) if status else {}
    except imaplib.IMAP4.abort:
        raise  # a dead connection: the pool logs in again
    except imaplib.IMAP4.error as exc:
        raise IMAPClientError(str(exc)) from exc
    finally:
        imap.untagged_responses.pop("LIST", None)
        imap.untagged_responses.pop("STATUS", None)


def _plain_list(client: IMAPClient) -> list[_Listed]:
    return [
        _Listed(
            _decode_name(name),
            _decode_delimiter(delimiter),
            frozenset(_as_text(a).lower() for a in attributes),
        )
        for attributes, delimiter, name in client.list_folders()
    ]


def _status(client: IMAPClient, name: str) -> tuple[int | None, int | None]:
    try:
        status = client.folder_status(name, ["MESSAGES", "UNSEEN"])
    except imaplib.IMAP4.abort:
        raise  # a dead connection is not a folder without counts
    except IMAPClientError:  # gone meanwhile, or no rights
        return None, None
    return _counts([item for pair in status.items() for item in pair])


# -- building the tree -----------------------------------------------------


def list_folders(
    client: IMAPClient,
    *,
    with_counts: bool | None = True,
    chosen: Mapping[str, str] | None = None,
) -> list[Folder]:
    """All folders as a tree in display order, each child right after its parent.

    INBOX first, then the special-use folders (Drafts, Sent, Archive, Junk,
    Trash, All, Flagged), then the others by name (case-insensitive, numbers by
    value); the same order at every level. A parent the server does not list is
    added as a non-selectable folder. ``total``/``unread`` are None without
    ``with_counts`` and for folders that cannot be selected. ``with_counts``
    None: counts only when they come with the listing (LIST-STATUS, one
    command), never at the price of one STATUS per folder.

    ``chosen`` maps a special use to the folder the user picked for it (the
    account's setting): that folder gets the use, and no other folder keeps it.
    """
    counts: dict[str, tuple[int | None, int | None]] = {}
    if with_counts is not False and client.has_capability("LIST-STATUS"):
        listed, counts = _extended_list(client, status=True)
        with_counts = True
    elif client.has_capability("LIST-EXTENDED"):
        listed, _none = _extended_list(client, status=False)
    else:
        listed = _plain_list(client)
    folders = _build(listed, fallbacks=not client.has_capability("SPECIAL-USE"))
    if chosen:
        folders = _with_chosen_uses(folders, chosen)
    if not with_counts:
        return folders
    counted = []
    for folder in folders:
        if folder.selectable:
            total, unread = counts.get(folder.name) or _status(client, folder.name)
            folder = replace(folder, total=total, unread=unread)
        counted.append(folder)
    return counted


def _with_chosen_uses(folders: list[Folder], chosen: Mapping[str, str]) -> list[Folder]:
    """The user's choices win over the server's attributes and our name guesses."""
    use_of = {name: SpecialUse(use) for use, name in chosen.items() if name}
    taken = set(use_of.values())
    result = []
    for folder in folders:
        if folder.name in use_of:
            folder = replace(folder, special_use=use_of[folder.name])
        elif folder.special_use in taken:
            folder = replace(folder, special_use=None)
        result.append(folder)
    return result


def _build(listed: list[_Listed], *, fallbacks: bool) -> list[Folder]:
    by_name: dict[str, _Listed] = {}
    for entry in listed:
        if entry.name and entry.name not in by_name:
            by_name[entry.name] = entry
    # Parents the server did not list (allowed by RFC 3501 for "*").
    for entry in list(by_name.values()):
        delimiter, name = entry.delimiter, entry.name
        while delimiter and delimiter in name:
            name = name.rsplit(delimiter, 1)[0]
            if not name or name in by_name:
                break
            by_name[name] = _Listed(name, delimiter, frozenset({"\\noselect"}))

    uses = _special_uses(by_name.values(), fallbacks=fallbacks)
    children: dict[str | None, list[str]] = {}
    for name, entry in by_name.items():
        parent = None
        if entry.delimiter and entry.delimiter in name:
            parent = name.rsplit(entry.delimiter, 1)[0] or None
        children.setdefault(parent, []).append(name)

    def order(name: str) -> tuple[int, _NaturalKey]:
        use = uses.get(name)
        return (_USE_ORDER[use] if use else _OTHER, _natural_key(name))

    result: list[Folder] = []

    def walk(parent: str | None) -> None:
        for name in sorted(children.get(parent, ()), key=order):
            entry = by_name[name]
            kids = children.get(name, [])
            delimiter = entry.delimiter
            attrs = entry.attributes
            result.append(
                Folder(
                    name=name,
                    display_name=name.rsplit(delimiter, 1)[-1] if delimiter else name,
                    delimiter=delimiter,
                    depth=name.count(delimiter) if delimiter else 0,
                    special_use=uses.get(name),
                    selectable=not attrs & {"\\noselect", "\\nonexistent"},
                    has_children=bool(kids) or "\\haschildren" in attrs,
                    total=None,
                    unread=None,
                )
            )
            walk(name)

    walk(None)
    return result


def _special_uses(
    entries: Iterable[_Listed], *, fallbacks: bool
) -> dict[str, SpecialUse]:
    """RFC 6154 attributes; name fallbacks only for uses no attribute claims."""
    entries = list(entries)
    uses: dict[str, SpecialUse] = {}
    for entry in entries:
        if entry.name.upper() == "INBOX":
            uses[entry.name] = SpecialUse.INBOX
            continue
        for attribute in sorted(entry.attributes):
            if attribute in _ATTRIBUTE_USES:
                uses[entry.name] = _ATTRIBUTE_USES[attribute]
                break
    if not fallbacks:
        return uses
    claimed = set(uses.values())
    best: dict[SpecialUse, tuple[int, _NaturalKey, str]] = {}
    for entry in entries:
        if entry.name in uses or entry.attributes & {"\\noselect", "\\nonexistent"}:
            continue
        use, rank = _fallback(entry.name, entry.delimiter)
        if use is None or use in claimed:
            continue
        candidate = (rank, _natural_key(entry.name), entry.name)
        if use not in best or candidate < best[use]:
            best[use] = candidate
    for use, (_rank, _key, name) in best.items():
        uses[name] = use
    return uses


# -- changing folders ------------------------------------------------------


def _root_delimiter(client: IMAPClient) -> str | None:
    """The delimiter of the personal namespace, from ``LIST "" ""``."""
    for _attributes, delimiter, _name in client.list_folders("", ""):
        return _decode_delimiter(delimiter)
    return None


def personal_namespace(client: IMAPClient) -> tuple[str, str | None]:
    """The prefix and delimiter of the user's own folders, asked once per login.

    From NAMESPACE (RFC 2342) when the server has it: Courier-IMAP answers
    ``(("INBOX." "."))``, so new top-level folders are ``INBOX.Name`` there.
    Without NAMESPACE: no prefix, and the delimiter of ``LIST "" ""``.
    """
    known = getattr(client, "_webmail_namespace", None)
    if known is not None:
        return known
    prefix, delimiter = "", None
    found = False
    if client.has_capability("NAMESPACE"):
        try:
            personal = client.namespace().personal
        except imaplib.IMAP4.abort:
            raise
        except IMAPClientError:
            personal = None
        if personal:
            raw_prefix, raw_delimiter = personal[0]
            prefix = _decode_name(raw_prefix) if raw_prefix else ""
            delimiter = _decode_delimiter(raw_delimiter)
            found = True
    if not found or delimiter is None:
        delimiter = _root_delimiter(client)
    if delimiter is None or (prefix and not prefix.endswith(delimiter)):
        prefix = ""  # nothing usable: folders go to the top
    known = (prefix, delimiter)
    client._webmail_namespace = known  # type: ignore[attr-defined] (per login)
    return known


def _find(client: IMAPClient, name: str) -> Folder:
    for folder in list_folders(client, with_counts=False):
        if folder.name == name:
            return folder
    raise FolderError(_("The folder “%(name)s” does not exist.") % {"name": name})


def _check_leaf(leaf: str, delimiter: str | None) -> str:
    leaf = unicodedata.normalize("NFC", leaf).strip()
    if not leaf:
        raise FolderError(_("A folder name cannot be empty."))
    if len(leaf) > MAX_LEAF_LENGTH:
        raise FolderError(
            _("A folder name can have at most %(max)d characters.")
            % {"max": MAX_LEAF_LENGTH}
        )
    if delimiter and delimiter in leaf:
        raise FolderError(
            _("A folder name cannot contain “%(delimiter)s”.")
            % {"delimiter": delimiter}
        )
    if _FORBIDDEN.search(leaf):
        raise FolderError(
            _("A folder name cannot contain control characters, “*” or “%”.")
        )
    return leaf


def _check_full(name: str) -> None:
    if len(imap_utf7.encode(name)) > MAX_NAME_BYTES:
        raise FolderError(_("This folder name is too long."))
    if name.upper() == "INBOX":
        raise FolderError(_("INBOX already exists."))


def _refused(exc: IMAPClientError) -> FolderError:
    """The server's own reason, without imapclient's command prefix."""
    text = str(exc).split(": ", 1)[-1]
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)  # response code
    text = re.sub(r"\s*\([\d.+ ]+secs?\)\.?$", "", text)  # Dovecot's timings
    return FolderError(_("The server refused: %(reason)s") % {"reason": text})


def _unprotected(folder: Folder, *, deleting: bool) -> None:
    if folder.special_use is None:
        return
    if deleting:
        message = _("“%(name)s” is a special folder and cannot be deleted.")
    else:
        message = _("“%(name)s” is a special folder and cannot be renamed.")
    raise FolderError(message % {"name": folder.name})


def create_folder(client: IMAPClient, name: str, parent: str | None = None) -> str:
    """Create folder ``name`` at the top or below ``parent``; return its full name.

    ``name`` is one level (it may not contain the server's delimiter). The top
    is the personal namespace: ``INBOX.name`` on a server whose namespace prefix
    is ``INBOX.`` (Courier-IMAP). Raises FolderError (a ValueError) for a bad
    name, a missing parent or the server's refusal (the folder exists, say).
    """
    if parent is None:
        prefix, delimiter = personal_namespace(client)
    else:
        delimiter = _find(client, parent).delimiter
        if delimiter is None:
            raise FolderError(
                _("The server does not allow folders inside other folders.")
            )
        prefix = parent + delimiter
    full = prefix + _check_leaf(name, delimiter)
    _check_full(full)
    try:
        client.create_folder(full)
    except imaplib.IMAP4.abort:
        raise  # a dead connection, not a refusal
    except IMAPClientError as exc:
        raise _refused(exc) from exc
    return full


def rename_folder(client: IMAPClient, old: str, new_leaf: str) -> str:
    """Give folder ``old`` the last component ``new_leaf``, in the same parent.

    Its subfolders move with it (the server renames them). Returns the new full
    name. INBOX and special-use folders are refused (FolderError).
    """
    folder = _find(client, old)
    _unprotected(folder, deleting=False)
    delimiter = folder.delimiter
    leaf = _check_leaf(new_leaf, delimiter)
    if delimiter and delimiter in old:
        new = old.rsplit(delimiter, 1)[0] + delimiter + leaf
    else:
        new = leaf
    if new == old:
        return old
    _check_full(new)
    try:
        client.rename_folder(old, new)
    except imaplib.IMAP4.abort:
        raise  # a dead connection, not a refusal
    except IMAPClientError as exc:
        raise _refused(exc) from exc
    return new


def delete_folder(client: IMAPClient, name: str) -> None:
    """Delete folder ``name`` and its messages.

    INBOX and special-use folders are refused, and so is whatever the server
    refuses (Dovecot: a folder that still has subfolders), as FolderError.
    """
    folder = _find(client, name)
    _unprotected(folder, deleting=True)
    try:
        client.delete_folder(name)
    except imaplib.IMAP4.abort:
        raise  # a dead connection, not a refusal
    except IMAPClientError as exc:
        raise _refused(exc) from exc
