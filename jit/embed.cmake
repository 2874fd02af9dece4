# Writes the bytes of IN as a C array (mwt_kernels_bc, mwt_kernels_bc_len) into OUT.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" body "${body}")
file(WRITE ${OUT} "/* generated from kernels.bc by jit/embed.cmake */\n#include <stddef.h>\n"
     "const unsigned char mwt_kernels_bc[] = {\n${body}\n};\nconst size_t mwt_kernels_bc_len = ${bytes};\n")
