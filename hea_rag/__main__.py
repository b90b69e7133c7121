from hea_rag.cli import main

if __name__ == "__main__":
    main()
