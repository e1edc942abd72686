// ha-nginx-garp: sends gratuitous ARP requests (RFC 5798 §6.4.2) for the agent, which has no AF_PACKET socket in
// Node.js. Long-lived: one request line "IFNAME ADDRESS" on stdin, one reply line "ok" or "error CODE DETAIL" on
// stdout, so an announcement costs a pipe write instead of a process. Exits when stdin closes, with its agent.
#include <arpa/inet.h>
#include <errno.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/if_ether.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static void reply_error(const char *code, const char *what) {
  printf("error %s %s: %s\n", code, what, strerror(errno));
}

static void announce(int fd, const char *ifname, const char *address) {
  struct in_addr ip;
  if (inet_pton(AF_INET, address, &ip) != 1) {
    printf("error failed not an IPv4 address: %s\n", address);
    return;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, ifname, strlen(ifname) + 1);
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
    reply_error(errno == ENODEV ? "no-such-interface" : "failed", ifname);
    return;
  }
  unsigned int ifindex = if_nametoindex(ifname);
  if (ifindex == 0) {
    reply_error("no-such-interface", ifname);
    return;
  }
  // As iputils `arping -U` and keepalived send it: a broadcast request whose sender and target are both the VIP.
  struct ether_arp arp;
  arp.arp_hrd = htons(ARPHRD_ETHER);
  arp.arp_pro = htons(ETH_P_IP);
  arp.arp_hln = ETH_ALEN;
  arp.arp_pln = 4;
  arp.arp_op = htons(ARPOP_REQUEST);
  memcpy(arp.arp_sha, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
  memcpy(arp.arp_spa, &ip, 4);
  memset(arp.arp_tha, 0xff, ETH_ALEN);
  memcpy(arp.arp_tpa, &ip, 4);
  struct sockaddr_ll to;
  memset(&to, 0, sizeof to);
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = (int)ifindex;
  to.sll_halen = ETH_ALEN;
  memset(to.sll_addr, 0xff, ETH_ALEN);
  if (sendto(fd, &arp, sizeof arp, 0, (struct sockaddr *)&to, sizeof to) < 0) {
    reply_error(errno == EPERM || errno == EACCES ? "permission-denied" : "failed", ifname);
    return;
  }
  puts("ok");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  // Protocol 0: the socket only sends (each sendto names ETH_P_ARP), so the kernel queues no received frame on it.
  int fd = socket(AF_PACKET, SOCK_DGRAM, 0);
  int socket_errno = errno;
  char line[256];
  while (fgets(line, sizeof line, stdin) != NULL) {
    char ifname[IF_NAMESIZE];
    char address[INET_ADDRSTRLEN + 1];
    if (fd < 0) {
      errno = socket_errno;
      reply_error(errno == EPERM || errno == EACCES ? "permission-denied" : "failed", "socket(AF_PACKET)");
    } else if (sscanf(line, "%15s %16s", ifname, address) != 2) {
      puts("error failed expected: IFNAME ADDRESS");
    } else {
      announce(fd, ifname, address);
    }
  }
  return 0;
}
