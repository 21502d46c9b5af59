from webhook_gateway.main import main

main()
