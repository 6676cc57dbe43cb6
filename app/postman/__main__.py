import sys

from app.postman import main

sys.exit(main(sys.argv[1:]))
