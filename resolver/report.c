/* stub: being written */
typedef int dnswarden_stub_report;
