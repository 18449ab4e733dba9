/* notify.c — see notify.h. The address is a path, or "@name" for Linux's
 * abstract namespace (the leading '@' becomes a NUL byte). */
#include "notify.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct sockaddr_un addr;
static socklen_t addr_len; /* 0: no socket given */

void notify_init(void)
{
	const char *s = getenv("NOTIFY_SOCKET");
	size_t n = s ? strlen(s) : 0;
	if (n >= 2 && n < sizeof addr.sun_path && (s[0] == '/' || s[0] == '@')) {
		addr.sun_family = AF_UNIX;
		memcpy(addr.sun_path, s, n);
		if (s[0] == '@')
			addr.sun_path[0] = '\0';
		addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
				       (s[0] == '/' ? 1 : 0));
	}
	unsetenv("NOTIFY_SOCKET");
}

void notify_send(const char *state)
{
	if (!addr_len)
		return;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	ssize_t r = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&addr,
			   addr_len);
	(void)r;
	close(fd);
}
