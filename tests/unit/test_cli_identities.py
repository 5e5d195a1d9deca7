"""`bridge identities import/list` against a moto DynamoDB table."""

from __future__ import annotations

import os

import pytest
from moto import mock_aws
from timeline_bridge.aws import AwsClients
from timeline_bridge.enrichment.identity import IdentityTable
from timeline_bridge_tools.cli import main

TABLE = "bridge-identities"


@pytest.fixture
def identity_table(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("IDENTITY_TABLE", raising=False)
    with mock_aws():
        clients = AwsClients()
        clients("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield IdentityTable(TABLE, clients)


def write_csv(tmp_path, text):
    path = tmp_path / "identities.csv"
    path.write_text(text)
    return path


def test_import_stores_rows_and_reports_counts_when_file_is_valid(identity_table, tmp_path, capsys):
    path = write_csv(
        tmp_path,
        "namespace,key,target_id\n"
        "stora_contact,Jane@Acme.example,con_0ac0514ed0711463\n"
        "stora_site,london-1,site_1a2b3c4d5e6f7a8b\n"
        "stora_contact,jane@acme.example,con_0ac0514ed0711464\n",
    )

    code = main(["identities", "import", str(path), "--table", TABLE])

    out = capsys.readouterr().out
    assert code == 0
    assert "imported 2 into bridge-identities" in out
    assert "1 duplicate" in out
    # keys are case-folded; the later row for the same key wins
    assert identity_table.get("stora_contact", " JANE@acme.example ") == "con_0ac0514ed0711464"
    assert identity_table.get("stora_site", "london-1") == "site_1a2b3c4d5e6f7a8b"


def test_import_writes_nothing_and_names_each_line_when_a_target_id_is_malformed(
    identity_table, tmp_path, capsys
):
    path = write_csv(
        tmp_path,
        "namespace,key,target_id\n"
        "stora_contact,jane@acme.example,con_0ac0514ed0711463\n"
        "stora_contact,bob@acme.example,con_XYZ\n"
        "Bad Namespace,x,y\n",
    )

    code = main(["identities", "import", str(path), "--table", TABLE])

    err = capsys.readouterr().err
    assert code == 1
    assert f"{path}:3: target_id 'con_XYZ' does not match" in err
    assert f"{path}:4: namespace 'Bad Namespace'" in err
    assert identity_table.get("stora_contact", "jane@acme.example") is None


def test_import_keeps_valid_rows_when_skip_invalid_is_given(identity_table, tmp_path, capsys):
    path = write_csv(
        tmp_path,
        "namespace,key,target_id\n"
        "stora_contact,jane@acme.example,con_0ac0514ed0711463\n"
        "stora_contact,bob@acme.example,site_0ac0514ed0711463\n",
    )

    code = main(["identities", "import", str(path), "--table", TABLE, "--skip-invalid"])

    assert code == 1
    assert "1 invalid" in capsys.readouterr().out
    assert identity_table.get("stora_contact", "jane@acme.example") == "con_0ac0514ed0711463"
    assert identity_table.get("stora_contact", "bob@acme.example") is None


def test_import_rejects_the_file_when_the_header_lacks_a_column(identity_table, tmp_path, capsys):
    path = write_csv(tmp_path, "namespace,email,target_id\nstora_contact,a@b.c,con_0ac0514ed0711463\n")

    code = main(["identities", "import", str(path), "--table", TABLE])

    assert code == 1
    assert "missing key" in capsys.readouterr().err


def test_import_writes_nothing_when_dry_run(identity_table, tmp_path, capsys):
    path = write_csv(tmp_path, "namespace,key,target_id\nstora_contact,a@b.c,con_0ac0514ed0711463\n")

    code = main(["identities", "import", str(path), "--table", TABLE, "--dry-run"])

    assert code == 0
    assert "would import 1 identities" in capsys.readouterr().out
    assert identity_table.get("stora_contact", "a@b.c") is None


def test_import_writes_more_than_one_batch_when_file_is_large(identity_table, tmp_path, capsys):
    rows = "".join(f"stora_contact,user{i}@acme.example,con_{i:016x}\n" for i in range(60))
    path = write_csv(tmp_path, "namespace,key,target_id\n" + rows)

    assert main(["identities", "import", str(path), "--table", TABLE]) == 0

    assert identity_table.get("stora_contact", "user59@acme.example") == f"con_{59:016x}"
    assert len(list(identity_table.scan())) == 60


def test_list_prints_csv_of_one_namespace_when_namespace_is_given(
    identity_table, tmp_path, capsys, monkeypatch
):
    path = write_csv(
        tmp_path,
        "namespace,key,target_id\n"
        "stora_contact,b@acme.example,con_0000000000000002\n"
        "stora_contact,a@acme.example,con_0000000000000001\n"
        "stora_site,london,site_0000000000000001\n",
    )
    monkeypatch.setenv("IDENTITY_TABLE", TABLE)
    assert main(["identities", "import", str(path)]) == 0
    capsys.readouterr()

    assert main(["identities", "list", "--namespace", "stora_contact"]) == 0

    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "namespace,key,target_id",
        "stora_contact,a@acme.example,con_0000000000000001",
        "stora_contact,b@acme.example,con_0000000000000002",
    ]
    assert "2 identities" in captured.err


def test_list_fails_with_a_hint_when_no_table_is_configured(identity_table, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no bridge dev runs from here

    assert main(["identities", "list"]) == 2
    assert "IDENTITY_TABLE" in capsys.readouterr().err


def test_import_uses_the_local_table_when_bridge_dev_runs_from_this_folder(
    identity_table, tmp_path, capsys, monkeypatch
):
    from timeline_bridge_tools.local.state import write_state

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IDENTITY_TABLE", "")  # restored after the test: the state's env is applied
    # What bridge dev leaves in .bridge/dev.json (its AWS endpoint is the moto mock here).
    write_state({"pid": os.getpid(), "env": {"IDENTITY_TABLE": TABLE}}, tmp_path)
    path = write_csv(tmp_path, "namespace,key,target_id\nstora_contact,a@b.example,con_0ac0514ed0711463\n")

    assert main(["identities", "import", str(path)]) == 0

    assert f"into {TABLE}" in capsys.readouterr().out
    assert identity_table.get("stora_contact", "a@b.example") == "con_0ac0514ed0711463"
