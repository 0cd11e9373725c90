"""Load-test data: agents licensed in every state and a transfer-number pool to match.

For `make bench`: enough agents per state that, with a short TTL, pings spread over the states
never run the pool dry. Run on a database of its own, after `seed_demo`. With
`--policies-vendor-key`, also a vendor authorized everywhere with every ping policy switched on,
its limits high enough never to refuse: the bench's policies phase pings as it.
"""

from datetime import date, time

from django.core.management.base import BaseCommand
from django.db import transaction

from routing.models import Agent, AgentLicense, DoNotCallNumber, TransferNumber
from vendors.models import DuplicateScope, Holiday, OpeningHours, Vendor, VendorCap
from vendors.services import vendor_key_create
from vendors.states import STATES

NEVER_REACHED = 1_000_000_000
# Fictional numbers (555-01XX) the bench never pings, so the list is looked up and never matches.
DO_NOT_CALL_NUMBERS = [f"+1{area}5550{n:03d}" for area in (201, 480, 602) for n in range(100, 200)]

FIRST_BENCH_NUMBER = 18885550000


class Command(BaseCommand):
    help = "Create agents in every state and a large transfer-number pool (load tests only)."

    def add_arguments(self, parser):
        parser.add_argument("--agents-per-state", type=int, default=80)
        parser.add_argument("--numbers", type=int, default=6000)
        parser.add_argument("--policies-vendor-key", help="a key for the vendor with policies on")
        parser.add_argument(
            "--policies-without-caps", action="store_true", help="that vendor without caps"
        )

    @transaction.atomic
    def handle(self, *args, agents_per_state: int, numbers: int, **options):
        if options.get("policies_vendor_key"):
            self._policies_vendor(
                options["policies_vendor_key"], caps=not options["policies_without_caps"]
            )
        agents = Agent.objects.bulk_create(
            Agent(
                name=f"Bench Agent {state} {index}",
                destination=f"sip:bench-{state}-{index}@x.invalid",
            )
            for state in sorted(STATES)
            for index in range(1, agents_per_state + 1)
        )
        AgentLicense.objects.bulk_create(
            AgentLicense(agent=agent, state=agent.name.split()[2]) for agent in agents
        )
        TransferNumber.objects.bulk_create(
            (TransferNumber(number=f"+{FIRST_BENCH_NUMBER + offset}") for offset in range(numbers)),
            ignore_conflicts=True,
        )
        self.stdout.write(
            f"Bench data ready: {Agent.objects.count()} agents, "
            f"{TransferNumber.objects.count()} transfer numbers."
        )

    def _policies_vendor(self, key: str, *, caps: bool) -> None:
        vendor = Vendor.objects.create(
            name="Bench Policies Vendor",
            all_states=True,
            consent_required=True,
            duplicate_window_days=30,
            duplicate_scope=DuplicateScope.ALL_VENDORS,
        )
        vendor_key_create(vendor=vendor, label="bench", key=key)
        OpeningHours.objects.bulk_create(
            OpeningHours(vendor=vendor, weekday=day, opens=time(0), closes=time(0))
            for day in range(7)
        )
        Holiday.objects.create(vendor=vendor, date=date(2099, 1, 1), name="Bench holiday")
        if caps:
            VendorCap.objects.create(
                vendor=vendor,
                most_at_once=NEVER_REACHED,
                most_per_hour=NEVER_REACHED,
                most_per_day=NEVER_REACHED,
            )
        DoNotCallNumber.objects.bulk_create(
            (DoNotCallNumber(number=number, source="bench") for number in DO_NOT_CALL_NUMBERS),
            ignore_conflicts=True,
        )
