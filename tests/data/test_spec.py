"""The data spec string: KIND:PATH,key=value options, parsed from the right."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infomax.data.spec import KINDS, parse_spec, spec_help
from infomax.errors import InfomaxError


def test_kind_path_and_options():
    spec = parse_spec("folder:imgs.zip,size=64,mode=L")
    assert (spec.kind, spec.path, spec.options) == ("folder", "imgs.zip", {"size": 64, "mode": "L"})


def test_kind_without_path_takes_options():
    assert parse_spec("digits").options == {}
    spec = parse_spec("digits,size=64,norm=symmetric")
    assert (spec.kind, spec.path, spec.options) == ("digits", "", {"size": 64, "norm": "symmetric"})


def test_comma_in_path_is_kept_when_no_known_key_follows():
    assert parse_spec("folder:my,photos").path == "my,photos"
    spec = parse_spec("folder:my,photos,size=32")
    assert (spec.path, spec.options) == ("my,photos", {"size": 32})


def test_existing_path_that_looks_like_an_option(tmp_path):
    weird = tmp_path / "a,b=c"
    weird.mkdir()
    assert parse_spec(f"folder:{weird}").path == str(weird)


def test_unknown_option_lists_valid_keys():
    with pytest.raises(InfomaxError, match="unknown option 'colour'.*size.*mode.*resize.*norm"):
        parse_spec("folder:imgs,colour=red")
    with pytest.raises(InfomaxError, match="unknown option 'labels' for cifar10"):
        parse_spec("cifar10:x.tar.gz,labels=coarse")


@pytest.mark.parametrize(
    "text, message",
    [
        ("folder:x,size=abc", "size=abc"),
        ("folder:x,size=0", "size=0"),
        ("folder:x,mode=CMYK", "RGB or L"),
        ("folder:x,resize=stretch", "shorter-crop, resize, pad"),
        ("folder:x,norm=zscore", "center or symmetric"),
        ("cifar100:x,labels=medium", "fine or coarse"),
        ("folder:x,size=32,size=64", "given twice"),
    ],
)
def test_bad_values_are_explained(text, message):
    with pytest.raises(InfomaxError, match=message):
        parse_spec(text)


def test_values_are_normalized():
    spec = parse_spec("folder:x,mode=gray,resize=PAD,norm=Symmetric")
    assert spec.options == {"mode": "L", "resize": "pad", "norm": "symmetric"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("pictures:x", "unknown data kind 'pictures'; known kinds: cifar10"),
        ("folder", "'folder' needs a path"),
        ("folder:", "'folder' needs a path"),
        ("idx", "'idx' needs a path"),
        ("digits:somewhere", "'digits' takes no path"),
        ("", "expected KIND:PATH"),
        ("digits,64", "expected key=value"),
    ],
)
def test_malformed_specs(text, message):
    with pytest.raises(InfomaxError, match=message):
        parse_spec(text)


def test_bare_existing_path_suggests_folder(tmp_path):
    with pytest.raises(InfomaxError, match="folder:"):
        parse_spec(str(tmp_path))


def test_aliases_and_case():
    assert parse_spec("CIFAR-10:x.tar.gz").kind == "cifar10"
    assert parse_spec("tiny-imagenet-200:x.zip").kind == "tiny-imagenet"
    assert parse_spec("fashion-mnist").kind == "fashion-mnist"


def test_help_lists_every_kind():
    text = spec_help()
    assert all(name in text for name in KINDS)


_path_part = st.text(alphabet="abcxyz_-./ ,", min_size=1, max_size=20).filter(
    lambda s: s.strip() and "=" not in s and not s.strip().endswith(",") and s.strip() == s
)


@settings(max_examples=200, deadline=None)
@given(path=_path_part, size=st.integers(1, 4096), mode=st.sampled_from(["RGB", "L"]))
def test_round_trip(path, size, mode):
    spec = parse_spec(f"folder:{path},size={size},mode={mode}")
    assert (spec.path, spec.options) == (path, {"size": size, "mode": mode})
