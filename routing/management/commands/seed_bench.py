"""Load-test data: agents licensed in every state and a transfer-number pool to match.

For `make bench`: enough agents per state that, with a short TTL, pings spread over the states
never run the pool dry. Run on a database of its own, after `seed_demo`.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from routing.models import Agent, AgentLicense, TransferNumber
from vendors.states import STATES

FIRST_BENCH_NUMBER = 18885550000


class Command(BaseCommand):
    help = "Create agents in every state and a large transfer-number pool (load tests only)."

    def add_arguments(self, parser):
        parser.add_argument("--agents-per-state", type=int, default=80)
        parser.add_argument("--numbers", type=int, default=6000)

    @transaction.atomic
    def handle(self, *args, agents_per_state: int, numbers: int, **options):
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
