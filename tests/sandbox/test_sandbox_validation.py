"""The sandbox's request validation against botocore shapes (unit level)."""

from __future__ import annotations

from botocore.model import ShapeResolver

from byoc.sandbox import validation

SHAPES = {
    "Input": {"type": "structure", "required": ["Name"], "members": {
        "Name": {"shape": "Name"}, "Weight": {"shape": "Weight"}, "Count": {"shape": "Count"},
        "Flag": {"shape": "Flag"}, "Tags": {"shape": "Tags"}}},
    "Name": {"type": "string", "min": 1, "max": 5, "pattern": "^[a-z]+$"},
    "Weight": {"type": "float", "min": 0, "max": 1},
    "Count": {"type": "integer", "min": 1, "max": 3},
    "Flag": {"type": "boolean"},
    "Tags": {"type": "list", "member": {"shape": "Name"}, "max": 2},
}


def check(params: dict) -> list:
    return validation.validate(ShapeResolver(SHAPES).get_shape_by_name("Input"), params)


def test_valid_input_has_no_errors():
    assert check({"Name": "abc", "Weight": 0.5, "Count": 2, "Flag": True, "Tags": ["x"]}) == []


def test_each_constraint_in_aws_wording():
    errors = check({"Weight": 1.5, "Count": True, "Flag": "yes", "Tags": ["a", "b", "C"]})
    assert "Value null at 'name' failed to satisfy constraint: Member must not be null" in errors
    assert "Value '1.5' at 'weight' failed to satisfy constraint: Member must have value less than or equal to 1" in errors
    assert "Value 'True' at 'count' failed to satisfy constraint: Member must be a number" in errors
    assert "Value 'yes' at 'flag' failed to satisfy constraint: Member must be a boolean" in errors
    assert any("at 'tags' failed to satisfy constraint: Member must have length less than or equal to 2" in e
               for e in errors)
    assert "Value 'C' at 'tags.3.member' failed to satisfy constraint: Member must satisfy regular expression " \
           "pattern: ^[a-z]+$" in errors
    assert validation.message(errors).startswith(f"{len(errors)} validation errors detected: ")


def test_numbers_below_the_minimum_and_strings_too_long():
    errors = check({"Name": "abcdef", "Count": 0, "Weight": -1})
    assert "Value 'abcdef' at 'name' failed to satisfy constraint: Member must have length less than or equal to 5" \
        in errors
    assert "Value '0' at 'count' failed to satisfy constraint: Member must have value greater than or equal to 1" \
        in errors
    assert "Value '-1' at 'weight' failed to satisfy constraint: Member must have value greater than or equal to 0" \
        in errors
