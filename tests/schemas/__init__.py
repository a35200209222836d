"""Tests of the `schemas` package: OCPI models, DateTimes, keys, page validation, export."""
