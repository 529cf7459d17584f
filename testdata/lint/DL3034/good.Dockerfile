FROM opensuse/leap:15.6
RUN zypper -n install httpd=2.4.58 && zypper --non-interactive in nginx=1.21.5 && zypper clean
