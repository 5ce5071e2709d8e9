"""gunicorn's sync worker, woken alone for each new connection.

Every idle sync worker waits in ``select()`` on the one listening socket the workers share,
so a connection wakes all of them; one accepts it and the others find nothing, go back to
sleep and have each paid a wake-up (with 4 workers, 3 wasted wake-ups per request, a third
of a millisecond of CPU each on a virtual machine). Waiting in an epoll set that holds the
listener with ``EPOLLEXCLUSIVE`` (Linux 4.5+), the kernel wakes one waiter per connection,
as nginx's workers do. Everything else is gunicorn's ``SyncWorker``: a worker that is busy
when a connection arrives takes it on its next ``accept()``, before it waits again."""

import os
import select

from gunicorn.workers.sync import SyncWorker


class ExclusiveWakeWorker(SyncWorker):
    _poller: "select.epoll | None" = None

    def wait(self, timeout):
        if not hasattr(select, "EPOLLEXCLUSIVE"):
            return super().wait(timeout)
        if self._poller is None:
            self._poller = select.epoll()
            for listener in self.sockets:
                self._poller.register(listener.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
            # The signal wake-up pipe: a signal ends the wait, as it ends gunicorn's select().
            self._poller.register(self.PIPE[0], select.EPOLLIN)
        self.notify()
        ready = {fd for fd, _ in self._poller.poll(timeout)}
        if self.PIPE[0] in ready:
            os.read(self.PIPE[0], 1)
        return [listener for listener in self.sockets if listener.fileno() in ready]
