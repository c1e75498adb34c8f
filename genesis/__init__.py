"""Genesis: the genesis file format, its validation, chain parameters and the dev accounts."""
