"""Demo data for a fresh install: the vendors, agents and numbers the integration guide assumes.

Idempotent: running it again changes nothing that is already there.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from routing.models import Agent, AgentLicense, TransferNumber
from vendors.models import Vendor, VendorKey, vendor_key_digest
from vendors.services import vendor_key_create

DEMO_VENDORS = [
    # name, key (the ones the contract names), all states, authorized states
    ("Demo Vendor", "6ab36a94-5dfb-4336-a559-63da6a5a26d2", False, ["AZ", "CA"]),
    ("All States Demo", "3f1c2a9e-7b4d-4e8a-9c61-2d5b8e0f4a17", True, []),
]
# The contract's sandbox key: a vendor trying each answer of the contract (the magic caller
# numbers of docs/vendor-guide.md) without holding the demo's agents.
DEMO_SANDBOX_KEYS = [
    # vendor name, key, label
    ("Demo Vendor", "5a1d0c3e-9f2b-4c6d-8e7f-0a1b2c3d4e5f", "demo sandbox key"),
]
DEMO_AGENTS = {"AZ": 3, "CA": 3, "TX": 10}
# The guide's first transfer target comes first; the rest are the same block of toll-free numbers.
FIRST_TRANSFER_NUMBER = 18775703926
TRANSFER_POOL_SIZE = 20


class Command(BaseCommand):
    help = "Create the demo vendors, agents and transfer numbers (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        for name, key, all_states, states in DEMO_VENDORS:
            vendor, _ = Vendor.objects.get_or_create(
                name=name, defaults={"all_states": all_states, "authorized_states": states}
            )
            if not VendorKey.objects.filter(digest=vendor_key_digest(key)).exists():
                vendor_key_create(vendor=vendor, label="demo key", key=key)
        for name, key, label in DEMO_SANDBOX_KEYS:
            if not VendorKey.objects.filter(digest=vendor_key_digest(key)).exists():
                vendor = Vendor.objects.get(name=name)
                vendor_key_create(vendor=vendor, label=label, key=key, sandbox=True)

        for state, count in DEMO_AGENTS.items():
            for index in range(1, count + 1):
                agent, _ = Agent.objects.get_or_create(
                    name=f"Demo Agent {state} {index}",
                    defaults={"destination": f"sip:agent-{state.lower()}-{index}@demo.invalid"},
                )
                AgentLicense.objects.get_or_create(agent=agent, state=state)

        for offset in range(TRANSFER_POOL_SIZE):
            TransferNumber.objects.get_or_create(number=f"+{FIRST_TRANSFER_NUMBER + offset}")

        self.stdout.write(
            f"Demo data ready: {Vendor.objects.count()} vendors, {Agent.objects.count()} agents, "
            f"{TransferNumber.objects.count()} transfer numbers."
        )
