"""Load-time checks of `enrich:` blocks: the schema names each kind's arguments, and a result can
only be read once it is fetched (a bad mapping fails `bridge validate` and the deploy)."""

from __future__ import annotations

from timeline_bridge.mapping.loader import check_text

HEAD = """name: checked
source: hubspot
target: matter
"""
BODY = """body: {kind: audit, title: "${{ enrichment.deal.properties.dealname }}", occurred_at: "2025-11-23T12:01:55Z", actor: a, ref: r}
"""


def errors_of(enrich: str, body: str = BODY) -> list[str]:
    _mapping, errors = check_text(HEAD + enrich + body, "checked.yaml")
    return [str(e) for e in errors]


def test_block_is_valid_when_each_fetch_reads_only_earlier_results():
    assert (
        errors_of(
            """enrich:
  deal: {fetch: hubspot.deal, with: {id: "${{ event.objectId }}", history: [dealstage]}}
  previous: {fetch: hubspot.stage_label, with: {stage: "${{ enrichment.deal.previous.dealstage }}"}, optional: true, ttl: 60}
"""
        )
        == []
    )


def test_fetch_reading_a_later_result_is_an_error_naming_its_line():
    errors = errors_of(
        """enrich:
  previous: {fetch: hubspot.stage_label, with: {stage: "${{ enrichment.deal.previous.dealstage }}"}}
  deal: {fetch: hubspot.deal, with: {id: "${{ event.objectId }}"}}
"""
    )

    assert errors == [
        "checked.yaml:5: enrich.previous.with.stage: enrichment.deal is fetched after 'previous': fetches run in the order written"
    ]


def test_body_reading_a_misspelt_result_is_an_error_naming_the_fetched_one():
    errors = errors_of(
        """enrich:
  deal: {fetch: hubspot.deal, with: {id: "${{ event.objectId }}"}}
""",
        body="""body: {kind: audit, title: "${{ enrichment.dael.properties.dealname }}", occurred_at: "2025-11-23T12:01:55Z", actor: a, ref: r}
""",
    )

    assert errors == ["checked.yaml:6: body.title: enrichment.dael is not fetched (did you mean 'deal'?)"]


def test_body_reading_a_result_nobody_fetches_is_an_error():
    errors = errors_of(
        """enrich:
  deal: {fetch: hubspot.deal, with: {id: "${{ event.objectId }}"}}
""",
        body="""body: {kind: audit, title: "${{ enrichment.owner.name }}", occurred_at: "2025-11-23T12:01:55Z", actor: a, ref: r}
""",
    )

    assert errors == ["checked.yaml:6: body.title: enrichment.owner is not fetched: add 'owner' to enrich"]


def test_unknown_kind_and_unknown_argument_are_errors_naming_their_lines():
    errors = errors_of(
        """enrich:
  deal: {fetch: hubspot.deals, with: {id: "1"}}
  who: {fetch: slack.user, with: {user_id: "U1"}}
""",
        body="""body: {kind: audit, title: t, occurred_at: "2025-11-23T12:01:55Z", actor: a, ref: r}
""",
    )

    assert any(
        e.startswith("checked.yaml:5: enrich.deal.fetch: 'hubspot.deals' must be one of hubspot.deal,")
        for e in errors
    )
    assert "checked.yaml:6: enrich.who.with: 'user' is a required property" in errors
    assert "checked.yaml:6: enrich.who.with.user_id: unknown key 'user_id' (allowed: user)" in errors


def test_identity_namespace_must_be_a_lowercase_name():
    errors = errors_of(
        """enrich:
  contact: {fetch: identity, with: {namespace: Stora-Contact, key: "${{ event.email }}"}}
""",
        body="""body: {kind: audit, title: "${{ enrichment.contact }}", occurred_at: "2025-11-23T12:01:55Z", actor: a, ref: r}
""",
    )

    assert errors == [
        "checked.yaml:5: enrich.contact.with.namespace: 'Stora-Contact' must be a namespace such as stora_contact (lowercase letters, digits, underscores)"
    ]
