package load

// sendmmsg(2) on linux/amd64 (the syscall package lists recvmmsg only).
const sysSendmmsg = 307
