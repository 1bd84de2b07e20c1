/* fcgi-pm status: argv[0] is "status". Returns the exit status. */
#ifndef FCGI_PM_STATUS_CMD_H
#define FCGI_PM_STATUS_CMD_H

int status_main(int argc, char **argv);

#endif
