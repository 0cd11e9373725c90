"""The ping's statement is built from a record insert its app describes: one that reads a value
the statement does not offer, or takes a parameter the statement fills itself, is refused when
the statement is built, not on some ping."""

import pytest

from routing.allocation import RecordInsert, allocation_statement


def test_it_fills_in_the_outcomes_values_and_numbers_the_parameters_in_order():
    statement = allocation_statement(
        record=RecordInsert(
            table="ping_log",
            columns={"note": "%(c_note)s", "reservation_id": "{reservation_id}", "at": "{now}"},
        )
    )

    assert "INSERT INTO ping_log(note,reservation_id,at)SELECT %(c_note)s,r.id,COALESCE(" in (
        statement.sql
    )
    assert "%(" not in statement.positional_sql
    assert statement.parameter_names[0] == "caller"
    assert set(statement.parameter_names) == {
        "caller", "vendor", "phone", "state", "now", "ttl", "c_note"
    }  # fmt: skip


def test_it_refuses_a_value_the_statement_does_not_offer():
    with pytest.raises(ValueError, match="agent_name"):
        allocation_statement(record=RecordInsert(table="t", columns={"x": "{agent_name}"}))


def test_it_refuses_a_parameter_of_the_statements_own():
    with pytest.raises(ValueError, match="phone"):
        allocation_statement(record=RecordInsert(table="t", columns={"x": "%(phone)s"}))
