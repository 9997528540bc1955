"""Response criteria: pure functions from frozen inputs to an `Assessment`.

One module per standard (recist, rano_bm, percist with suv and tmtv, chun, perfusion,
amino_pet, prognostic); their numbers come from rules/<criterion>.yaml, loaded and
validated by `rules.load_rules` (the only module here that reads a file).
`casefile` turns the worked-case format of ../shared/criteria into inputs for
`nadir assess`. Thresholds are compared exactly (`exact`), never with binary floats.
"""
