// Reads a TID 1500 SR the way OHIF's cornerstone-dicom-sr extension does (dcmjs naturalized
// dataset; measurement groups merged by Tracking Unique Identifier; NUM labels; SCOORD of each
// NUM or of the group with its referenced image) and prints JSON. Exits non-zero on the
// conditions that make OHIF refuse or crash (conformance.md §2, §5.4).
'use strict';
const dcmjs = require('dcmjs');
const fs = require('fs');

const arr = x => (x === undefined || x === null ? [] : Array.isArray(x) ? x : [x]);
const code = item => arr(item.ConceptNameCodeSequence)[0] || {};
const fail = msg => { console.error(msg); process.exit(2); };

const buf = fs.readFileSync(process.argv[2]);
const dict = dcmjs.data.DicomMessage.readFile(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict);

if (code(ds).CodeValue !== '126000') fail('OHIF only supports TID1500 Imaging Measurement Report');
const root = arr(ds.ContentSequence);
const library = root.find(i => code(i).CodeValue === '111028');
if (!library) fail('no Image Library (OHIF dereferences it)');
const libGroup = arr(library.ContentSequence).find(i => code(i).CodeValue === '126200');
if (!libGroup) fail('no Image Library Group');
const libraryUids = arr(libGroup.ContentSequence).map(i => arr(i.ReferencedSOPSequence)[0].ReferencedSOPInstanceUID);
const im = root.find(i => code(i).CodeValue === '126010');
if (!im) fail('no Imaging Measurements container');
const groups = arr(im.ContentSequence).filter(i => code(i).CodeValue === '125007');

const merged = {};
const order = [];
for (const g of groups) {
  const items = arr(g.ContentSequence);
  const uidItem = items.find(i => code(i).CodeValue === '112040');
  if (!uidItem) fail('group without Tracking Unique Identifier');
  const firstUidref = items.find(i => i.ValueType === 'UIDREF');
  if (firstUidref !== uidItem) fail('a UIDREF precedes the Tracking Unique Identifier');
  if (!merged[uidItem.UID]) { merged[uidItem.UID] = []; order.push(uidItem.UID); merged[uidItem.UID].push(...items); }
  else merged[uidItem.UID].push(...items.filter(i => code(i).CodeValue !== '112040'));
}

const scoord = item => {
  const ref = arr(arr(item.ContentSequence)[0].ReferencedSOPSequence)[0];
  return { graphicType: item.GraphicType, graphicData: arr(item.GraphicData).map(Number),
           referencedSOPInstanceUID: ref.ReferencedSOPInstanceUID };
};

const out = [];
for (const uid of order) {
  const items = merged[uid];
  const tid = items.find(i => code(i).CodeValue === '112039');
  const topScoord = items.find(i => i.ValueType === 'SCOORD' || i.ValueType === 'SCOORD3D');
  const nums = items.filter(i => i.ValueType === 'NUM');
  // OHIF's non-geometric path puts each TEXT (DCM,121106,"Comment") first in the label
  const comments = topScoord ? [] : items
    .filter(i => i.ValueType === 'TEXT' && code(i).CodeValue === '121106' && code(i).CodingSchemeDesignator === 'DCM')
    .map(i => i.TextValue);
  const m = { trackingUid: uid, trackingIdentifier: tid ? tid.TextValue : null, path: topScoord ? 'TID1410' : 'nonGeometric',
              comments, measurements: [] };
  for (const n of nums) {
    const mv = arr(n.MeasuredValueSequence)[0];
    const entry = { meaning: code(n).CodeMeaning, codeValue: code(n).CodeValue,
                    value: mv ? Number(mv.NumericValue) : null,
                    unit: mv ? arr(mv.MeasurementUnitsCodeSequence)[0].CodeValue : null, scoord: null };
    if (!topScoord) {
      // OHIF: const { ValueType } = ContentSequence  -> TypeError when a NUM has no children
      if (!n.ContentSequence) fail(`NUM ${entry.meaning} of ${m.trackingIdentifier} has no ContentSequence: OHIF would throw`);
      const first = arr(n.ContentSequence)[0];
      if (first.ValueType === 'SCOORD') entry.scoord = scoord(first);
    }
    m.measurements.push(entry);
  }
  if (topScoord) m.scoord = scoord(topScoord);
  // OHIF 3.12 places a measurement by coords[0] (a top-level SCOORD, else each NUM's SCOORD child):
  // one with none throws in _checkIfCanAddMeasurementsToDisplaySet and the SR draws nothing
  m.coords = topScoord ? 1 : nums.filter(n => n.ContentSequence && arr(n.ContentSequence)[0].ValueType === 'SCOORD').length;
  out.push(m);
}
process.stdout.write(JSON.stringify({ libraryUids, measurements: out }, null, 1));
