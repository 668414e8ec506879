"""`manage.py seed_demo`: demo users, items, live auctions and bids; safe to run again.

The demo logins get the published passwords below only for the local demo: with
`--demo-passwords` (scripts/run and docker-compose.yml pass it) or DEBUG on. Anywhere else
each new login gets a random password, printed once.
"""

import io
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from PIL import Image, ImageColor, ImageDraw, ImageFont

from accounts.models import User
from accounts.services import user_create
from auctions.errors import DomainError
from auctions.models import OPEN_STATUSES, Auction, Category, Item
from auctions.selectors import db_now
from auctions.services import Upload, auction_create, item_create
from bidding.services import bid_place

# Published demo logins, for the local demo only (the README names them).
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-demo-pass"
DEMO_USERNAMES = ("alice", "bob", "carol")
DEMO_PASSWORD = "demo-pass-123"


@dataclass(frozen=True)
class DemoAuction:
    seller: str
    name: str
    description: str
    starting_price: str
    terms: dict[str, Any] = field(default_factory=dict)
    # Minutes from now; the auction is pending when starts_in > 0.
    starts_in: int = 0
    lasts: int = 30
    # (bidder, amount, or "up to X" for a maximum bid)
    bids: tuple[tuple[str, str], ...] = ()
    category: str = "collectibles"
    # The demo's own pictures: drawn here (no downloads), in these colours.
    colours: tuple[str, str] = ("#3b6fd8", "#9fc2ff")


DEMO_AUCTIONS = (
    DemoAuction(
        seller="alice",
        name="Vintage 35mm film camera",
        category="cameras",
        colours=("#5a4632", "#d8b98a"),
        description="A 1970s rangefinder, serviced last year. Comes with its leather case.",
        starting_price="40.00",
        terms={"min_increment": "2.00"},
        lasts=45,
        bids=(("bob", "40.00"), ("carol", "45.00")),
    ),
    DemoAuction(
        seller="bob",
        name="Mechanical keyboard",
        category="electronics",
        colours=("#2d3142", "#9aa5c4"),
        description="Tenkeyless, tactile switches, PBT keycaps. Soft close: late bids extend it.",
        starting_price="25.00",
        terms={"extension_seconds": 30},
        lasts=10,
        bids=(("alice", "25.00"),),
    ),
    DemoAuction(
        seller="carol",
        name="Oak writing desk",
        category="furniture",
        colours=("#7a4b21", "#e0b07a"),
        description="Solid oak, three drawers, 120 x 60 cm. Sold only above its reserve.",
        starting_price="120.00",
        terms={"reserve_price": "300.00", "min_increment": "5.00"},
        lasts=30,
        bids=(("alice", "130.00"), ("bob", "150.00")),
    ),
    DemoAuction(
        seller="alice",
        name="Signed first edition",
        category="books",
        colours=("#5b2a3c", "#e3a6b8"),
        description="A signed first printing of a well-loved novel, dust jacket intact. "
        "Buy it now, or bid: the offer to buy ends with the first bid.",
        starting_price="60.00",
        terms={"buy_now_price": "150.00"},
        lasts=60,
    ),
    DemoAuction(
        seller="alice",
        name="Pocket watch",
        category="collectibles",
        colours=("#555b66", "#d9dde3"),
        description="Silver, hand-wound, 1920s. The standard increment table applies; bob "
        "left a maximum bid, so carol's bid was answered by the site on his behalf.",
        starting_price="20.00",
        terms={"increments": "standard"},
        lasts=40,
        bids=(("bob", "up to 90.00"), ("carol", "30.00")),
    ),
    DemoAuction(
        seller="carol",
        name="Espresso machine",
        category="home-kitchen",
        colours=("#3d2b1f", "#c59a6d"),
        description="Dual boiler, lightly used, descaled monthly.",
        starting_price="80.00",
        terms={"min_increment": "1.00"},
        lasts=5,
        bids=(("bob", "80.00"),),
    ),
    DemoAuction(
        seller="bob",
        name="Road bike",
        category="sports",
        colours=("#1f5f3f", "#8fd6ae"),
        description="Aluminium frame, 56 cm, 2x11 gears. The auction opens in two minutes.",
        starting_price="200.00",
        terms={"min_increment": "10.00"},
        starts_in=2,
        lasts=30,
    ),
)


CATEGORIES = {
    "books": "Books",
    "cameras": "Cameras",
    "collectibles": "Collectibles",
    "electronics": "Electronics",
    "furniture": "Furniture",
    "home-kitchen": "Home & kitchen",
    "sports": "Sports",
}


def demo_picture(spec: DemoAuction, variant: int) -> Upload:
    """A picture of the item, drawn here: a gradient, a shape and the item's initials."""
    width, height = 1200, 900
    top, bottom = (ImageColor.getrgb(colour) for colour in spec.colours)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        mix = y / height
        draw.line(
            [(0, y), (width, y)],
            fill=tuple(round(a + (b - a) * mix) for a, b in zip(top, bottom, strict=True)),
        )
    inset = 160 + 60 * variant
    if variant % 2:
        draw.ellipse([inset, inset, width - inset, height - inset], outline="white", width=14)
    else:
        draw.rounded_rectangle(
            [inset, inset, width - inset, height - inset], radius=60, outline="white", width=14
        )
    initials = "".join(word[0] for word in spec.name.split()[:3]).upper()
    font = ImageFont.load_default(size=220)
    draw.text((width / 2, height / 2), initials, fill="white", font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    out.seek(0)
    return Upload(file=out, size=out.getbuffer().nbytes)


class Command(BaseCommand):
    help = (
        "Create demo users, items and live auctions with a few bids. Running it again "
        "creates nothing twice: it only reopens demo items whose auction has finished."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--demo-passwords",
            action="store_true",
            help="Give new demo logins the published passwords (the local demo only; also "
            "with DEBUG on). Otherwise each gets a random password, printed once.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        published = bool(options["demo_passwords"] or settings.DEBUG)
        with transaction.atomic():
            created_users = self._users(published)
            created_auctions, bids = self._auctions()
        open_count = Auction.objects.filter(
            item__in=self._demo_items(), status__in=OPEN_STATUSES
        ).count()
        self._report(created_users, created_auctions, bids, open_count, published)

    def _users(self, published: bool) -> dict[str, str]:
        """Create the demo logins that are missing (username → password); existing users are
        left as they are."""

        def password(known: str) -> str:
            return known if published else secrets.token_urlsafe(12)

        created = {}
        admin = User.objects.filter(username=ADMIN_USERNAME).first()
        if admin is None:
            created[ADMIN_USERNAME] = password(ADMIN_PASSWORD)
            User.objects.create_superuser(username=ADMIN_USERNAME, password=created[ADMIN_USERNAME])
        for username in DEMO_USERNAMES:
            if not User.objects.filter(username=username).exists():
                created[username] = password(DEMO_PASSWORD)
                user_create(username=username, password=created[username])
        return created

    def _demo_items(self) -> list[Item]:
        items = []
        for spec in DEMO_AUCTIONS:
            item = Item.objects.filter(owner__username=spec.seller, name=spec.name).first()
            if item is not None:
                items.append(item)
        return items

    def _auctions(self) -> tuple[int, int]:
        """Open an auction for each demo item that has no pending or active one."""
        users = {user.username: user for user in User.objects.filter(username__in=DEMO_USERNAMES)}
        categories = {
            slug: Category.objects.get_or_create(slug=slug, defaults={"name": name})[0]
            for slug, name in CATEGORIES.items()
        }
        created = bids = 0
        for spec in DEMO_AUCTIONS:
            seller = users[spec.seller]
            item = Item.objects.filter(owner=seller, name=spec.name).first()
            category = categories[spec.category]
            if item is None:
                item = item_create(
                    owner=seller, name=spec.name, description=spec.description, category=category
                )
            elif item.auctions.filter(status__in=OPEN_STATUSES).exists():
                continue
            photos = [] if item.images.exists() else [demo_picture(spec, n) for n in range(2)]
            start = db_now() + timedelta(minutes=spec.starts_in) if spec.starts_in else None
            auction = auction_create(
                creator=seller,
                item_id=item.id,
                starting_price=spec.starting_price,
                start_time=start,
                duration_seconds=spec.lasts * 60,
                photos=photos,
                **spec.terms,
            )
            created += 1
            for bidder, amount in spec.bids:
                top = amount.removeprefix("up to ") if amount.startswith("up to ") else None
                try:
                    bid_place(
                        auction_id=auction.id,
                        bidder=users[bidder],
                        amount=None if top else amount,
                        max_amount=top,
                    )
                except DomainError as exc:
                    self.stderr.write(f"Demo bid of {amount} by {bidder} refused: {exc.message}")
                else:
                    bids += 1
        return created, bids

    def _report(
        self,
        created_users: dict[str, str],
        auctions: int,
        bids: int,
        open_count: int,
        published: bool,
    ) -> None:
        # A wildcard bind address is not something a browser can open.
        host = "127.0.0.1" if settings.HOST in ("0.0.0.0", "::", "") else settings.HOST
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        site = f"http://{host}:{settings.PORT}/"
        notes = {ADMIN_USERNAME: "  (staff: the admin)"}
        unchanged = "(existed already: password not changed)"
        logins = [
            (username, created_users.get(username, unchanged), notes.get(username, ""))
            for username in (ADMIN_USERNAME, *DEMO_USERNAMES)
        ]

        out = self.stdout
        out.write(self.style.SUCCESS("Demo data ready."))
        out.write(
            f"  {auctions} auctions and {bids} bids created now; {open_count} demo auctions open."
        )
        out.write("")
        out.write(f"  Site:   {site}")
        out.write(f"  Admin:  {site}admin/")
        out.write("")
        out.write("  Logins (username / password):")
        for username, password, note in logins:
            out.write(f"    {username:<6} / {password}{note}")
        if created_users and not published:
            out.write("  The passwords are random and shown only this once: note them now.")
