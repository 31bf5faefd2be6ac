/* stub: being written */
typedef int dnswarden_stub_sink_sqlite;
