"""What the radiologist opens: TID 1500 SR, SEG, key images (SC), KOS, impression text.

Entry point: `bundle.build_report(ReportRequest, ReportSettings) -> ReportObjects`
(datasets in sending order via `.datasets()`). Reading an SR back into lesions:
`readback.read_report(dataset, geometry=None)`. Layout and codes: conformance.md.
"""
