/* fcgi-pm resize: argv[0] is "resize". Returns the exit status. */
#ifndef FCGI_PM_RESIZE_CMD_H
#define FCGI_PM_RESIZE_CMD_H

int resize_main(int argc, char **argv);

#endif
