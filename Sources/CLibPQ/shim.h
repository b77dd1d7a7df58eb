#ifndef COORD_CLIBPQ_SHIM_H
#define COORD_CLIBPQ_SHIM_H
#include <libpq-fe.h>

/* glibc declares pipe2 only under _GNU_SOURCE, which Swift's Glibc module is not built with.
   The launcher needs it to create pipes that are close-on-exec from birth (see Subprocess.swift). */
extern int pipe2(int pipefd[2], int flags);

/* Swift's Glibc module leaves out <sys/epoll.h>; coordd's HTTP loop waits in epoll (HTTPServer.swift). It accepts with
   accept4, also _GNU_SOURCE only, so that a connection is close-on-exec from birth: a child spawned between accept and
   fcntl would otherwise hold the socket, and its epoll registration, open after coordd closed it. */
#include <sys/epoll.h>
struct sockaddr;
extern int accept4(int sockfd, struct sockaddr *addr, unsigned int *addrlen, int flags);
#endif
