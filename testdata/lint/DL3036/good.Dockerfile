FROM opensuse/leap:15.6
RUN zypper -n install httpd=2.4.58 && zypper clean -a
