/* notify.h — systemd's readiness protocol (sd_notify) without libsystemd:
 * one datagram per state to the unix socket in $NOTIFY_SOCKET, if set.
 *
 *   notify_init();            reads and unsets NOTIFY_SOCKET (children must
 *                             not inherit it); call before forking
 *   notify_send("READY=1");   once listening and serving
 *   notify_send("STOPPING=1");
 *
 * Without NOTIFY_SOCKET both do nothing. Errors are ignored: readiness is
 * advice to the service manager, never a reason to stop serving. */
#ifndef FORQ_NOTIFY_H
#define FORQ_NOTIFY_H

void notify_init(void);
void notify_send(const char *state);

#endif
