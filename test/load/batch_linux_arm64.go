package load

// sendmmsg(2) on linux/arm64.
const sysSendmmsg = 269
