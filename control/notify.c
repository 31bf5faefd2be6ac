/* control: telling the service manager how start-up and reloads go. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <systemd/sd-daemon.h>

#include "control.h"

void
control_notify(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	/* Under "dnswarden serve" in a terminal there is nobody to tell. */
	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sd_notify(0, msg);
}
