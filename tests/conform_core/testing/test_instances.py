"""Contract instances: declared by plugins through a hook, built lazily, skipped with a reason."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from conform_core.exceptions import ConformError
from conform_core.hookspecs import hookimpl
from conform_core.plugins import build_registry
from conform_core.testing import (
    ContractInstance,
    ContractInstances,
    parametrize_with_checks,
    registered_contract_instances,
)
from conform_core.testing.checks import _built, check_kind_declared

from .test_checks import GoodDataset, GoodDenoiser, GoodEncoder, write_good_dataset


class _Factory:
    """Stands in for pytest's tmp_path_factory (one session, numbered folders)."""

    def __init__(self, root: Path, session: str = "s1") -> None:
        self.root, self.made = root / session, 0
        self.root.mkdir(exist_ok=True)

    def getbasetemp(self) -> Path:
        return self.root

    def mktemp(self, name: str) -> Path:
        self.made += 1
        path = self.root / f"{name}{self.made}"
        path.mkdir()
        return path


# --------------------------------------------------------------------- ContractInstance
def test_ids_name_the_instance():
    assert ContractInstance(GoodDenoiser).label == "GoodDenoiser()"
    half = ContractInstance(GoodDenoiser, params={"shrink": 0.5})
    assert half.label == "GoodDenoiser(shrink=0.5)"
    assert ContractInstance(GoodDataset, write_good_dataset).label == \
        "GoodDataset(write_good_dataset)"
    assert ContractInstance(GoodDataset, write_good_dataset, id="two").label == "GoodDataset(two)"


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(cls=int), TypeError, "needs a Component subclass; got <class 'int'>"),
    (dict(cls=GoodDenoiser, build=lambda f: GoodDenoiser(), params={"shrink": 1}), TypeError,
     "takes build= or params=, not both"),
    (dict(cls=GoodDenoiser, build="GoodDenoiser()"), TypeError, "build must be a function"),
    (dict(cls=GoodDenoiser, build=lambda f: GoodDenoiser()), ValueError,
     "id '<lambda>' is not usable in a test id"),
])
def test_a_malformed_instance_is_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        ContractInstance(**kwargs)


def test_build_gets_a_folder_and_must_return_the_class(tmp_path):
    made = ContractInstance(GoodDataset, write_good_dataset).make(tmp_path)
    assert made.subjects() == ["sub-01", "sub-02"] and made.location == str(tmp_path)
    wrong = ContractInstance(GoodDenoiser, lambda folder: GoodEncoder(), id="wrong")
    with pytest.raises(TypeError, match=r"GoodDenoiser\(wrong\): build returned GoodEncoder"):
        wrong.make(tmp_path)


def test_an_instance_is_built_once_per_session_in_its_own_folder(tmp_path):
    calls: list[Path] = []

    def toy(folder: Path) -> GoodDataset:
        calls.append(folder)
        return write_good_dataset(folder)

    instance = ContractInstance(GoodDataset, toy)
    first = _Factory(tmp_path, "s1")
    assert _built(instance, first) is _built(instance, first)
    assert len(calls) == 1 and calls[0].parent == first.root and list(calls[0].iterdir())
    _built(instance, _Factory(tmp_path, "s2"))
    assert len(calls) == 2


def _run_case(decorated, item, check, tmp_path):
    """Call a parametrize_with_checks-decorated test as pytest would, for one case."""
    return decorated(component=item, check=check, tmp_path_factory=_Factory(tmp_path))


def test_a_check_that_needs_a_missing_module_is_skipped_with_the_install_hint(tmp_path):
    instance = ContractInstance(GoodDenoiser, requires=("no_such_module_conform",),
                                hint="pip install 'conform-fmri[nothing]'")
    assert instance.missing() == ["no_such_module_conform"]

    def needs_it(component):
        import no_such_module_conform  # noqa: F401

    def needs_it_underneath(component):
        try:
            needs_it(component)
        except ImportError as exc:
            raise ConformError("install the extra") from exc

    @parametrize_with_checks([instance])
    def test_contract(component, check):
        check(component)

    for check in (needs_it, needs_it_underneath):
        with pytest.raises(pytest.skip.Exception,
                           match=r"GoodDenoiser\(\) needs no_such_module_conform, which is not "
                                 r"installed \(pip install 'conform-fmri\[nothing\]'\)"):
            _run_case(test_contract, instance, check, tmp_path)


def test_checks_that_do_not_need_the_missing_module_still_run(tmp_path):
    instance = ContractInstance(GoodDenoiser, requires=("no_such_module_conform",))

    def fails_otherwise(component):
        raise AssertionError("a real failure")

    def needs_another(component):
        import another_missing_module_conform  # noqa: F401

    @parametrize_with_checks([instance])
    def test_contract(component, check):
        check(component)

    _run_case(test_contract, instance, check_kind_declared, tmp_path)
    with pytest.raises(AssertionError, match="a real failure"):
        _run_case(test_contract, instance, fails_otherwise, tmp_path)
    with pytest.raises(ModuleNotFoundError, match="another_missing_module_conform"):
        _run_case(test_contract, instance, needs_another, tmp_path)


def test_plain_instances_are_passed_through(tmp_path):
    est = GoodDenoiser()
    assert _built(est, _Factory(tmp_path)) is est


# --------------------------------------------------------------------- parametrize_with_checks
def test_nothing_is_built_at_collection_and_the_test_gets_the_built_instance(tmp_path):
    calls: list[Path] = []

    def toy(folder: Path) -> GoodDataset:
        calls.append(folder)
        return write_good_dataset(folder)

    seen = []

    @parametrize_with_checks([ContractInstance(GoodDataset, toy, id="toy"), GoodDenoiser()])
    def test_contract(component, check):
        seen.append(component)

    assert calls == []
    mark = test_contract.pytestmark[0]
    ids = mark.kwargs["ids"]
    assert "GoodDataset(toy)-check_dataset_subjects" in ids
    assert "GoodDenoiser()-check_fit_idempotent" in ids
    import inspect

    assert list(inspect.signature(test_contract).parameters) == [
        "component", "check", "tmp_path_factory"]
    (lazy, check) = mark.args[1][ids.index("GoodDataset(toy)-check_dataset_subjects")]
    test_contract(component=lazy, check=check, tmp_path_factory=_Factory(tmp_path))
    assert len(calls) == 1 and isinstance(seen[0], GoodDataset)


def test_a_test_that_asks_for_tmp_path_factory_still_gets_it(tmp_path):
    got = []

    @parametrize_with_checks([ContractInstance(GoodDenoiser)])
    def test_contract(component, check, tmp_path_factory):
        got.append((component, tmp_path_factory))

    factory = _Factory(tmp_path)
    test_contract(component=ContractInstance(GoodDenoiser), check=check_kind_declared,
                  tmp_path_factory=factory)
    assert isinstance(got[0][0], GoodDenoiser) and got[0][1] is factory


def test_parametrize_refuses_what_is_not_a_component():
    with pytest.raises(TypeError, match="takes components or ContractInstance objects; got 'pca'"):
        parametrize_with_checks(["pca"])


# --------------------------------------------------------------------- the hook
def _plugin(name: str, **hooks):
    module = types.ModuleType(name)
    vars(module).update(hooks)
    return module


def test_the_hook_gives_instances_and_the_default_fills_in(pm_with):
    @hookimpl
    def conform_register(registry):
        registry.add("denoiser", "good", GoodDenoiser)
        registry.add("encoder", "good", GoodEncoder)
        registry.add("dataset", "good", GoodDataset)

    @hookimpl
    def conform_contract_instances(instances: ContractInstances):
        instances.add(GoodDataset, write_good_dataset, id="toy")
        instances.add(GoodDenoiser)
        instances.add(GoodDenoiser, params={"shrink": 0.5})

    pm = pm_with(_plugin("goods", conform_register=conform_register,
                         conform_contract_instances=conform_contract_instances), "goods")
    found = registered_contract_instances(pm, build_registry(pm))
    assert [i.label for i in found] == ["GoodDataset(toy)", "GoodDenoiser()",
                                        "GoodDenoiser(shrink=0.5)", "GoodEncoder()"]
    assert registered_contract_instances(pm, build_registry(pm), distributions=["other"]) == []


def test_two_instances_with_one_id_are_refused():
    instances = ContractInstances()
    instances.add(GoodDenoiser, params={"shrink": 0.5}, id="half")
    with pytest.raises(ValueError, match="GoodDenoiser already has a contract instance with id "
                                         "'half'; give each instance its own id="):
        instances.add(GoodDenoiser, params={"shrink": 0.25}, id="half")
