/** OHIF v3 configuration served by Nadir (daemon/web/ohif.py) in place of the package's own.
 *
 * One data source: the PACS's DICOMweb on the SAME origin as the viewer (the Nadir viewer
 * server forwards /dicom-web and /wado to the PACS, e.g. Orthanc with its DICOMweb plugin),
 * so no CORS and nothing outside the hospital network is contacted.
 * A site serving its own OHIF copies the dataSources entry and replaces the three roots
 * with its PACS's DICOMweb URLs (see deploy/viewer.md).
 */
window.config = {
  name: 'nadir',
  routerBasename: '/',
  extensions: [],
  modes: [],
  customizationService: {},
  showStudyList: true,
  maxNumberOfWebWorkers: 2,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: true,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  maxNumRequests: { interaction: 100, thumbnail: 75, prefetch: 25 },
  showErrorDetails: 'always',
  defaultDataSourceName: 'pacs',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'pacs',
      configuration: {
        friendlyName: 'PACS (DICOMweb) with Nadir results',
        name: 'pacs',
        qidoRoot: '/dicom-web',
        wadoRoot: '/dicom-web',
        wadoUriRoot: '/wado',
        qidoSupportsIncludeField: false,
        supportsReject: false,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: false,
        supportsWildcard: true,
        omitQuotationForMultipartRequest: true,
        bulkDataURI: { enabled: true },
      },
    },
  ],
};
